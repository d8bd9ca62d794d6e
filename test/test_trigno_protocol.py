"""Trigno TCU protocol: framing, reply parsing, row decoding, rates, settings, sample clock."""
import numpy as np
import pytest

from biosig_ros.devices import trigno_protocol as tp
from biosig_ros.devices.stream_assembler import SampleClock, StreamAssembler
from biosig_ros.devices.trigno_client import TrignoSettings
from biosig_ros.devices.trigno_simulator import EmgSource, TrignoSimulator, synthetic_aux_rows
from biosig_ros.errors import ConfigError


def test_commands_are_upper_case_crlf_lines_ending_with_an_empty_line():
    assert tp.encode_commands("START") == b"START\r\n\r\n"
    assert tp.encode_commands("sensor 1 paired?", "STOP") == b"SENSOR 1 PAIRED?\r\nSTOP\r\n\r\n"
    for bad in ("", "A\r\nB", "A\nB"):
        with pytest.raises(ValueError):
            tp.encode_commands(bad)
    with pytest.raises(ValueError):
        tp.encode_commands()


def test_replies_are_split_at_the_delimiter_whatever_the_recv_boundaries():
    stream = (b"Delsys Trigno System Digital Protocol Version 3.6.0 \r\n\r\n"
              b"OK\r\n\r\n0.0135\r\n\r\nINVALID COMMAND\r\n\r\nYE")
    expected = ["Delsys Trigno System Digital Protocol Version 3.6.0", "OK", "0.0135",
                "INVALID COMMAND"]
    whole = tp.ReplyParser()
    assert whole.feed(stream) == expected
    assert whole.pending == b"YE"
    assert whole.feed(b"S\r\n") == []
    assert whole.feed(b"\r\n") == ["YES"]
    byte_by_byte = tp.ReplyParser()
    replies = [r for i in range(len(stream)) for r in byte_by_byte.feed(stream[i:i + 1])]
    assert replies == expected
    # the delimiter itself split across two reads
    split = tp.ReplyParser()
    assert split.feed(b"OK\r\n\r") == []
    assert split.feed(b"\nBYE\r\n\r\n") == ["OK", "BYE"]


def test_server_side_packets_hold_several_commands():
    parser = tp.CommandParser()
    assert parser.feed(b"start\r\n") == []
    assert parser.feed(b"\r\nMASTER\r\nSENSOR 3 TYPE?\r\n\r\nSTOP") == ["START", "MASTER",
                                                                       "SENSOR 3 TYPE?"]
    assert parser.feed(b"\r\n\r\n") == ["STOP"]


def test_rows_decode_little_and_big_endian_float32_across_arbitrary_reads():
    rows = np.arange(3 * tp.SLOTS, dtype=np.float64).reshape(3, tp.SLOTS) * 1e-5 - 2e-4
    expected = rows.astype(np.float32).astype(np.float64)
    for big in (False, True):
        payload = tp.encode_rows(rows, big_endian=big)
        assert len(payload) == 3 * 4 * tp.SLOTS
        decoder = tp.RowDecoder(tp.SLOTS, big_endian=big)
        pieces = [payload[:5], payload[5:64], payload[64:65], payload[65:150], payload[150:]]
        decoded = [decoder.feed(p) for p in pieces]
        assert [d.shape[0] for d in decoded] == [0, 1, 0, 1, 1]   # rows of 64 bytes
        assert np.array_equal(np.concatenate(decoded), expected)
        assert decoder.pending_bytes == 0
    little = tp.encode_rows(rows[:1])
    assert little[:4] == np.float32(rows[0, 0]).tobytes()          # native x86 = little
    assert tp.encode_rows(rows[:1], big_endian=True)[:4] == little[:4][::-1]


def test_rates_and_ports_match_the_tcu():
    assert tp.sample_rate(27) == pytest.approx(2000.0, rel=1e-12)
    assert tp.sample_rate(26) == pytest.approx(1925.926, abs=1e-3)
    assert tp.sample_rate(20) == pytest.approx(1481.48, abs=1e-2)
    assert tp.sample_rate(2) == pytest.approx(148.148, abs=1e-3)
    with pytest.raises(ValueError):
        tp.sample_rate(0)
    assert tp.data_ports(legacy=False) == (50043, 50044)
    assert tp.data_ports(legacy=True) == (50041, 50042)
    assert tp.aux_row_floats(legacy=True) == 48
    assert tp.aux_row_floats(legacy=False) == 144
    assert tp.parse_number("0.0135", "FRAME INTERVAL?") == 0.0135
    assert tp.parse_number("UPSAMPLING 27", "x") == 27
    with pytest.raises(ValueError, match="MAX SAMPLES EMG"):
        tp.parse_number("INVALID COMMAND", "MAX SAMPLES EMG?")


def test_simulator_answers_commands_like_the_tcu():
    source = EmgSource(np.zeros((10, 2)), [3, 5], loop=True)
    sim = TrignoSimulator(source)
    assert sim.reply("FRAME INTERVAL?") == "0.0135"
    assert sim.reply("max samples emg?") == "27"
    assert sim.reply("MAX SAMPLES AUX?") == "2"
    assert sim.reply("UPSAMPLE OFF") == "OK"
    assert sim.reply("MAX SAMPLES EMG?") == "26"
    assert sim.reply("UPSAMPLING?") == "UPSAMPLING OFF"
    assert sim.reply("SENSOR 3 PAIRED?") == "YES"
    assert sim.reply("SENSOR 4 PAIRED?") == "NO"
    assert sim.reply("SENSOR 5 TYPE?") == "O"
    assert sim.reply("SENSOR 17 PAIRED?") == "CANNOT COMPLETE"
    assert sim.reply("SENSOR 3 CHANNEL 1 UNITS?") == "V"
    assert sim.reply("SENSOR 3 CHANNEL 2 UNITS?") == "g"
    assert sim.reply("BACKWARDS COMPATIBILITY?") == "NO"
    assert sim.reply("BACKWARDS COMPATIBILITY ON") == "OK"
    assert sim.reply("BACKWARDS COMPATIBILITY?") == "YES"
    assert sim.reply("ENDIANESS?") == "LITTLE"
    assert sim.reply("MASTER") == "NEW MASTER"
    assert sim.reply("START") == "OK"
    assert sim.reply("UPSAMPLE ON") == "CANNOT COMPLETE"     # not while streaming
    assert sim.reply("STOP") == "OK"
    assert sim.reply("QUIT") == "BYE"
    assert sim.reply("FLY") == "INVALID COMMAND"
    overridden = TrignoSimulator(source)
    overridden.settings.replies = {"MAX SAMPLES EMG?": "20"}
    assert overridden.reply("MAX SAMPLES EMG?") == "20"


def test_simulator_places_channels_in_slots_and_loops():
    data = np.arange(12, dtype=float).reshape(4, 3)
    source = EmgSource(data, [2, 7, 16], loop=True)
    rows = source.rows(3, 3)
    assert rows.shape == (3, 16)
    assert rows[:, 1].tolist() == [9.0, 0.0, 3.0]         # slot 2 = channel 0, wraps at 4
    assert rows[:, 15].tolist() == [11.0, 2.0, 5.0]
    assert not rows[:, [0, 2, 3, 4, 5]].any()
    assert EmgSource(data, [1, 2, 3], loop=False).rows(2, 3) is None
    with pytest.raises(ConfigError):
        EmgSource(data, [1, 2], loop=True)
    aux = synthetic_aux_rows(0, 2, [2], legacy=True, rate=148.148)
    assert aux.shape == (2, 48) and aux[0, 3 + 2] == 1.0 and not aux[:, :3].any()


@pytest.mark.parametrize("values, parameter", [
    (dict(sensor_slots=[0, 1]), "sensor_slots"),
    (dict(sensor_slots=[]), "sensor_slots"),
    (dict(sensor_slots=[1, 1]), "sensor_slots"),
    (dict(sensor_slots=[1, 2], channel_names=["a"]), "channel_names"),
    (dict(sensor_slots=[1, 2], channel_names=["a", "a"]), "channel_names"),
    (dict(command_port=0), "command_port"),
    (dict(emg_port=70000), "emg_port"),
    (dict(publish_rate=-1.0), "publish_rate"),
    (dict(publish_rate=5000.0), "publish_rate"),
    (dict(expected_rate=-2.0), "expected_rate"),
    (dict(aux_components=["acc_w"]), "aux_components"),
    (dict(legacy=True, aux_components=["gyro_x"]), "aux_components"),
    (dict(aux_slots=[17]), "aux_slots"),
    (dict(data_timeout=0.0), "data_timeout"),
    (dict(host=" "), "host"),
])
def test_bad_settings_name_the_parameter(values, parameter):
    with pytest.raises(ConfigError, match=f"'{parameter}'"):
        TrignoSettings(**values)


def test_settings_defaults():
    s = TrignoSettings(sensor_slots=[4, 2])
    assert s.emg_channel_names == ["EMG4", "EMG2"]
    assert s.data_ports == (50043, 50044)
    assert TrignoSettings(legacy=True, emg_port=6000).data_ports == (6000, 50042)


def test_sample_clock_keeps_the_earliest_bound_of_arrivals():
    clock = SampleClock(rate=2000.0, base_index=0, drift=0.0)
    clock.update(10.0135 + 0.004, 27)        # first frame arrived 4 ms late
    clock.update(10.027 + 0.001, 54)         # second one 1 ms late
    clock.update(10.0405 + 0.010, 81)        # a late one does not move the stamps
    assert clock.stamp(0) == pytest.approx(10.001, abs=1e-9)
    assert clock.stamp(2000) == pytest.approx(11.001, abs=1e-9)
    assert clock.index_at(12.001) == 4000


def test_assembler_cuts_chunks_and_jumps_indices_over_an_outage():
    chunks = []
    assembler = StreamAssembler([2, 0], np.array([1.0, 2.0]), ["a", "b"], "V", 20,
                                chunks.append)
    rows = np.arange(27 * 3, dtype=float).reshape(27, 3)
    assembler.begin_segment(2000.0)
    for k in range(4):                               # held until 50 ms of paced frames
        assembler.push(rows, arrival=100.0135 * 1 + k * 0.0135)
    assert chunks == []
    assembler.push(rows, arrival=100.0135 + 4 * 0.0135)
    assert [(c.first_sample_index, c.sample_count) for c in chunks] == [
        (20 * i, 20) for i in range(6)]              # 135 samples: 15 wait
    assert chunks[0].data[1].tolist() == [5.0, 6.0]        # column 2, then column 0 doubled
    assert chunks[0].stamp == pytest.approx(100.0, abs=1e-9)
    assert np.array_equal(chunks[1].data[:, 0], rows[list(range(20, 27)) + list(range(13)), 2])
    assembler.begin_segment(2000.0, after_loss=True)  # the device went away: flush the 15 left
    assert (chunks[-1].first_sample_index, chunks[-1].sample_count) == (120, 15)
    for k in range(5):                               # back 2 s later, paced again
        assembler.push(rows, arrival=102.027 + k * 0.0135)
    resumed = chunks[7]
    # Its first sample was taken at 102.0135 s, i.e. sample 4027 of the stream that began at
    # 100.0 s: the samples the outage cost are missing from the indices (and counted).
    assert resumed.first_sample_index == 4027 and assembler.lost == 4027 - 135
    assert resumed.stamp == pytest.approx(102.0135, abs=1e-9)
    assert resumed.stamp == pytest.approx(chunks[0].stamp + 4027 / 2000.0, abs=1e-9)


def test_a_late_first_frame_does_not_set_the_clock_and_stamps_never_go_backwards():
    chunks = []
    assembler = StreamAssembler([0], np.ones(1), ["a"], "V", 27, chunks.append)
    assembler.begin_segment(2000.0)
    rows = np.zeros((27, 1))
    assembler.push(rows, arrival=10.0135 + 0.050)     # first frame 50 ms late ...
    for k in range(2, 10):                            # ... the next ones on time
        assembler.push(rows, arrival=10.0 + k * 0.0135)
    # the segment settles on every held frame: the late one does not shift the stamps
    assert [c.stamp for c in chunks] == pytest.approx([10.0 + k * 0.0135 for k in range(9)],
                                                      abs=1e-9)
    chunks.clear()
    assembler = StreamAssembler([0], np.ones(1), ["a"], "V", 27, chunks.append)
    assembler.begin_segment(2000.0)
    for k in range(1, 13):                            # 5 frames 50 ms late, then on time
        assembler.push(rows, arrival=10.0 + k * 0.0135 + (0.050 if k <= 5 else 0.0))
    stamps = [c.stamp for c in chunks]
    assert stamps[:5] == pytest.approx([10.05 + k * 0.0135 for k in range(5)], abs=1e-9)
    # frames 6-8 were taken before 10.104 s: held just after it instead of going back
    assert stamps[5:8] == pytest.approx([10.104001, 10.104002, 10.104003], abs=1e-9)
    assert stamps[8:] == pytest.approx([10.108, 10.1215, 10.135, 10.1485], abs=1e-9)
