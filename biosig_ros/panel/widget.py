"""The operator panel's widget, the same in rqt and in the `biosig_ros_panel` window.

It only draws: a QTimer (`refresh_rate`, 30 per second) takes a snapshot of the model when it
changed and updates the plots; service answers, which come from the backend's threads, wait in
a queue that the same timer empties. The backend (biosig_ros/ros/panel_adapter.py, or a fake
in tests) offers: model, namespaces(), services(), set_namespace(ns), call(action, namespace,
params, on_done).
"""
from __future__ import annotations

import queue
import time
from collections import deque

from biosig_ros.panel.actions import ACTIONS, Action, Answer, service_name
from biosig_ros.panel.model import Snapshot, stream_rows
from biosig_ros.panel.plots import Bars, StackedTraces
from biosig_ros.panel.qt import (QColor, QComboBox, QDoubleSpinBox, QGroupBox,
                                 QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
                                 QPlainTextEdit, QPushButton, QSplitter, Qt, QTableWidget,
                                 QTableWidgetItem, QTimer, QVBoxLayout, QWidget)

LEVELS = {0: ("OK", "#2ca02c"), 1: ("WARN", "#ff7f0e"), 2: ("ERROR", "#d62728"),
          3: ("STALE", "#7f7f7f")}
ASSIST_COLOURS = {"enabled": "#2ca02c", "disabled": "#555555", "fault": "#d62728",
                  "stopped": "#d62728"}


class PanelWidget(QWidget):
    """Plots, streams table, assist state and the service buttons for one namespace."""

    def __init__(self, backend, refresh_rate: float = 30.0, parent=None):
        super().__init__(parent)
        self.setObjectName("BiosigRosPanel")
        self.setWindowTitle("biosig_ros panel")
        self.backend = backend
        self.model = backend.model
        self.namespace = self.model.namespace or "/"
        self.follow_graph = True  # show the first namespace found until one is chosen
        self.frames = 0   # timer ticks
        self.draws = 0    # ticks that drew new data
        self.fps = 0.0    # ticks per second over the last second
        self.draw_seconds: deque[float] = deque(maxlen=300)  # snapshot + plot updates
        self.answers: dict[str, Answer] = {}
        self.confirm = self._ask  # replaced by tests (no modal dialog off screen)
        self._answer_queue: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._drawn_version = -1
        self._diagnostics_key = None
        self._fps_window = (time.monotonic(), 0)
        self._build()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(max(1, int(round(1000.0 / refresh_rate))))

    # --- layout --------------------------------------------------------------------------

    def _build(self) -> None:
        window = self.model.window_s
        top = QHBoxLayout()
        top.addWidget(QLabel("Namespace:"))
        self.namespace_box = QComboBox()
        self.namespace_box.setMinimumWidth(160)
        self.namespace_box.addItem(self.namespace)
        self.namespace_box.currentTextChanged.connect(self._on_namespace)
        top.addWidget(self.namespace_box)
        self.status = QLabel("")
        top.addWidget(self.status, 1)
        top.addWidget(QLabel("Torque DoFs:"))
        self.torque_dofs = QLineEdit(", ".join(self.model.torque_dofs))
        self.torque_dofs.setPlaceholderText("the model's last 4")
        self.torque_dofs.setToolTip("DoFs whose muscle (solid) and inverse dynamics (dashed) "
                                    "torques are plotted, comma-separated")
        self.torque_dofs.editingFinished.connect(self._on_torque_dofs)
        top.addWidget(self.torque_dofs)

        self.envelope_plot = StackedTraces("EMG envelopes", window)
        self.bars = Bars("Activation (newest sample)")
        self.joint_plot = StackedTraces("Joint angles", window)
        self.torque_plot = StackedTraces(
            "Joint torques: muscle model (solid), inverse dynamics (dashed)", window,
            overlay=True)
        self.torque_plot.widget.setVisible(False)  # until torque_node's topics deliver
        self.streams = QTableWidget(0, 4)
        self.streams.setHorizontalHeaderLabels(["node", "level", "message", "rates, gaps, delays"])
        self.streams.verticalHeader().setVisible(False)
        header = self.streams.horizontalHeader()
        for column, mode in enumerate((QHeaderView.ResizeToContents,
                                       QHeaderView.ResizeToContents, QHeaderView.Stretch,
                                       QHeaderView.Stretch)):
            header.setSectionResizeMode(column, mode)
        self.streams.setEditTriggers(QTableWidget.NoEditTriggers)

        self.assist_state = QLabel("assist: no assist/state in this namespace")
        self.assist_state.setWordWrap(True)
        self.assist_state.setTextFormat(Qt.RichText)

        controls = QVBoxLayout()
        controls.addWidget(self.assist_state)
        self.buttons: dict[str, QPushButton] = {}
        self.answer_labels: dict[str, QLabel] = {}
        self.record_path = QLineEdit()
        self.record_path.setPlaceholderText("file name ('' = timestamped)")
        self.mvc_duration = QDoubleSpinBox()
        self.mvc_duration.setRange(0.5, 120.0)
        self.mvc_duration.setValue(5.0)
        self.mvc_duration.setSuffix(" s")
        for group in dict.fromkeys(a.group for a in ACTIONS):
            box = QGroupBox(group)
            row = QHBoxLayout()
            if group == "Recording":
                row.addWidget(self.record_path, 1)
            if group == "EMG":
                row.addWidget(QLabel("duration"))
                row.addWidget(self.mvc_duration)
            for action in (a for a in ACTIONS if a.group == group):
                button = QPushButton(action.label + ("..." if action.confirm else ""))
                button.setObjectName(action.key)
                button.clicked.connect(lambda _=False, a=action: self.trigger(a))
                self.buttons[action.key] = button
                row.addWidget(button)
            if group != "Recording":
                row.addStretch(1)
            answer = QLabel("-")
            answer.setWordWrap(True)
            self.answer_labels[group] = answer
            column = QVBoxLayout(box)
            column.setContentsMargins(6, 4, 6, 4)
            column.addLayout(row)
            column.addWidget(answer)
            controls.addWidget(box)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(200)
        self.log.setPlaceholderText("service answers")
        self.log.setMaximumHeight(110)
        controls.addWidget(self.log)
        control_widget = QWidget()
        control_widget.setLayout(controls)

        left = QSplitter(Qt.Vertical)
        left.addWidget(self.envelope_plot.widget)
        left.addWidget(self.joint_plot.widget)
        left.addWidget(self.torque_plot.widget)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        left.setStretchFactor(2, 2)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.bars.widget)
        right.addWidget(control_widget)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 0)
        body = QSplitter(Qt.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        # The streams table spans the width: node messages and health values are long.
        outer = QSplitter(Qt.Vertical)
        outer.addWidget(body)
        outer.addWidget(self.streams)
        outer.setStretchFactor(0, 4)
        outer.setStretchFactor(1, 1)
        outer.setSizes([720, 200])  # proportions kept as the window resizes
        self.streams.setMinimumHeight(120)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(outer, 1)

    # --- GUI timer -------------------------------------------------------------------------

    def refresh(self) -> None:
        """One screen refresh: draw what changed, show answers, follow the namespaces."""
        self._show_answers()
        if self.frames % 15 == 0:
            self._update_namespaces()
        self.frames += 1
        start, counted = self._fps_window
        now = time.monotonic()
        if now - start >= 1.0:
            self.fps = (self.frames - counted) / (now - start)
            self._fps_window = (now, self.frames)
        if self.model.version == self._drawn_version or not self.isVisible():
            return  # nothing new, or a hidden rqt tab: nothing to draw
        started = time.perf_counter()
        snapshot = self.model.snapshot()
        self._drawn_version = snapshot.version
        self.draw(snapshot)
        self.draws += 1
        self.draw_seconds.append(time.perf_counter() - started)

    def draw(self, snap: Snapshot) -> None:
        envelope, joints = snap.envelope, snap.joints
        self.envelope_plot.update(envelope.names, [envelope.unit or "V"] * len(envelope.names),
                                  envelope.t, envelope.values)
        self.joint_plot.update(joints.names, joints.unit.split(",") if joints.unit else [],
                               joints.t, joints.values)
        self.bars.update(envelope.names, snap.mvc_percent,
                         "no EMG envelope yet" if not envelope.names else
                         "envelope in V: no MVC applied (Calibrate MVC)")
        self._draw_torques(snap)
        self.drawn = snap
        self._draw_assist(snap.assist)
        self._draw_streams(snap.diagnostics)

    def _draw_torques(self, snap: Snapshot) -> None:
        torques = snap.torques
        self.torque_plot.widget.setVisible(torques is not None)
        if torques is None:
            return
        muscle, inverse = torques.muscle, torques.inverse_dynamics
        self.torque_plot.update(torques.dofs, ["N.m"] * len(torques.dofs), muscle.t,
                                muscle.values, overlay=(inverse.t, inverse.values))

    def _on_torque_dofs(self) -> None:
        dofs = [d.strip() for d in self.torque_dofs.text().split(",") if d.strip()]
        if dofs != self.model.torque_dofs:
            self.model.set_torque_dofs(dofs)

    def _draw_assist(self, assist: dict | None) -> None:
        if assist is None:
            self.assist_state.setText("assist: no assist/state in this namespace")
            return
        colour = ASSIST_COLOURS.get(assist["state"], "#000000")
        commands = ", ".join(f"{n} {c:+.2f} N.m" for n, c in zip(assist["joint_names"],
                                                                   assist["command"]))
        reason = assist["reason"] or "-"
        self.assist_state.setText(
            f"assist: <b style='color:{colour}'>{assist['state'].upper()}</b> "
            f"&nbsp; reason: {reason}<br>command: {commands or '-'}")

    def _draw_streams(self, statuses: list[dict]) -> None:
        rows = stream_rows(statuses)
        key = tuple((r["node"], r["level"], r["message"], tuple(r["health"].items()))
                    for r in rows)
        if key == self._diagnostics_key:
            return
        self._diagnostics_key = key
        self.streams.setRowCount(len(rows))
        for i, row in enumerate(rows):
            level, colour = LEVELS.get(row["level"], (str(row["level"]), "#000000"))
            health = "  ".join(f"{k} {v}" for k, v in row["health"].items())
            for j, text in enumerate((row["node"], level, row["message"], health)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if j == 1:
                    item.setForeground(QColor(colour))
                self.streams.setItem(i, j, item)

    def _update_namespaces(self) -> None:
        found = self.backend.namespaces()
        shown = [self.namespace_box.itemText(i) for i in range(self.namespace_box.count())]
        if self.follow_graph and found and self.namespace not in found:
            self.set_namespace(found[0], chosen=False)
        wanted = sorted(set(found) | {self.namespace})
        if wanted != shown:
            self.namespace_box.blockSignals(True)
            self.namespace_box.clear()
            self.namespace_box.addItems(wanted)
            self.namespace_box.setCurrentText(self.namespace)
            self.namespace_box.blockSignals(False)
        self.status.setText(
            f"{len(found)} namespace(s) with biosig_ros topics" if found
            else "no biosig_ros topics in the graph yet")

    def _on_namespace(self, namespace: str) -> None:
        if namespace and namespace != self.namespace:
            self.set_namespace(namespace)

    def set_namespace(self, namespace: str, chosen: bool = True) -> None:
        """Show `namespace` (chosen: by the user, the panel stops following the graph)."""
        self.follow_graph = self.follow_graph and not chosen
        self.namespace = namespace
        if self.namespace_box.currentText() != namespace:
            self.namespace_box.blockSignals(True)
            if self.namespace_box.findText(namespace) < 0:
                self.namespace_box.addItem(namespace)
            self.namespace_box.setCurrentText(namespace)
            self.namespace_box.blockSignals(False)
        self.backend.set_namespace(namespace)

    # --- buttons ---------------------------------------------------------------------------

    def _ask(self, action: Action) -> bool:
        answer = QMessageBox.question(self, action.label, action.confirm,
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def trigger(self, action: Action) -> None:
        """A button was pressed: ask if needed, then call its service without waiting."""
        if action.confirm and not self.confirm(action):
            self._show(action.group, f"{action.label}: cancelled")
            return
        params = {"path": self.record_path.text().strip(),
                  "duration": self.mvc_duration.value()}
        name = service_name(self.namespace, action)
        self._show(action.group, f"{action.label}: calling {name} ...")
        self.buttons[action.key].setEnabled(False)
        self.backend.call(action, self.namespace, params, self._answer_queue.put)

    def _show_answers(self) -> None:
        while True:
            try:
                answer = self._answer_queue.get_nowait()
            except queue.Empty:
                return
            self.answers[answer.action.key] = answer
            self.buttons[answer.action.key].setEnabled(True)
            self._show(answer.action.group, answer.line(),
                       "#2ca02c" if answer.success else "#d62728")

    def _show(self, group: str, text: str, colour: str = "#000000") -> None:
        label = self.answer_labels[group]
        label.setStyleSheet(f"color: {colour}")
        label.setText(text)
        self.log.appendPlainText(time.strftime("%H:%M:%S ") + text)

    def close_panel(self) -> None:
        self.timer.stop()
