// biosig_ros live view: draws what the live_view node pushes over Server-Sent Events.
// No library: canvas 2D for the strip charts, the bars and a small orbit projection for 3D.
// window.__liveView exposes what was drawn last (for tests and benchmarks). Panels of their own
// files (torques.js) register a drawing function in window.__liveViewPanels; each gets `kit`.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const STREAMS = ["envelope", "raw", "joints", "torque_muscle", "torque_inverse_dynamics"];
  const emptySeries = () => Object.fromEntries(STREAMS.map((name) => [name, []]));
  const panels = window.__liveViewPanels = window.__liveViewPanels || [];
  const LAG_LIMIT_S = 2.0;
  const api = window.__liveView = {
    connected: false, inits: 0, framesReceived: 0, frames: 0, fps: 0, seq: 0, errors: 0,
    charts: {}, bars: {}, skeletonLines: 0, markers: { visible: 0, occluded: [] }, sync: null,
    delays: {}, delaySamples: [], lastDraw: 0, drawMs: 0, resyncs: 0, connects: 0,
    // newest index of each stream in the last two frames received: what "drawn within one
    // refresh" is checked against
    received: {},
  };
  const state = {
    meta: null, series: emptySeries(), markers: null, skeleton: null,
    stats: {}, recv: {}, drawnRecv: {}, dirty: false, drawTimes: [], initSeq: -1,
  };
  const camera = { azimuth: -60, elevation: 15, zoom: 1, center: null, radius: 0.5 };

  // --- connection -------------------------------------------------------------------------
  let source = null;
  function connect() {
    if (source) source.close();
    state.minTransit = Infinity;
    state.connectedAt = Date.now() / 1000;
    api.connects++;
    state.initSeq = Infinity;  // until the new snapshot: frames of the old stream are dropped
    source = new EventSource("events?raw=" + ($("raw-toggle").checked ? 1 : 0));
    source.onopen = () => { api.connected = true; status(); };
    source.onerror = () => {
      api.connected = false;
      status();
      // EventSource retries by itself after a dropped connection, but gives up for good on
      // an HTTP error (e.g. 503, too many viewers): try again a little later.
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(state.retry);
        state.retry = setTimeout(connect, 2000);
      }
    };
    source.onmessage = (event) => {
      try { handle(JSON.parse(event.data)); } catch (error) { api.errors++; console.error(error); }
    };
  }
  function status() {
    const el = $("status");
    el.textContent = api.connected ? "live" : "reconnecting…";
    el.className = "status " + (api.connected ? "on" : "off");
  }
  const windowS = () => (state.meta ? state.meta.config.window_s : 10);

  function handle(msg) {
    // A snapshot holds everything up to its seq: older frames still queued are not news.
    if (msg.type === "frame" && msg.seq <= state.initSeq) return;
    // Frames that waited in buffers (a page that could not keep up): start afresh from a
    // snapshot rather than draw the past. The shortest transit seen is the baseline, so the
    // clocks of the browser's and the node's machines need not agree.
    const transit = Date.now() / 1000 - msg.time;
    state.minTransit = Math.min(state.minTransit, transit);
    if (msg.type === "frame" && transit - state.minTransit > LAG_LIMIT_S
        && Date.now() / 1000 - state.connectedAt > LAG_LIMIT_S) {
      api.resyncs++;
      connect();
      return;
    }
    api.seq = msg.seq;
    if (msg.type === "init") {
      state.initSeq = msg.seq;
      api.inits++;
      applyMeta(msg.meta);
      api.received = {};
      for (const name of STREAMS) {
        state.series[name] = (msg.history[name] || []).slice();
        const s = state.series[name];
        if (s.length) api.received[name] = [s[s.length - 1][0], s[s.length - 1][0]];
      }
    } else {
      api.framesReceived++;
      if (msg.meta) applyMeta(msg.meta);
      for (const name of STREAMS) {
        if (!msg[name] || !msg[name].length) continue;
        append(name, msg[name]);
        const newest = msg[name][msg[name].length - 1][0];
        api.received[name] = [newest, (api.received[name] || [newest])[0]];
      }
    }
    if (msg.markers) state.markers = msg.markers;
    if (msg.skeleton) state.skeleton = msg.skeleton;
    if ("sync" in msg) state.sync = msg.sync;
    if (msg.stats) state.stats = msg.stats;
    if (msg.recv) state.recv = msg.recv;
    state.dirty = true;
  }
  function applyMeta(meta) {
    state.meta = meta;
    state.series = emptySeries();
    api.charts = {}; api.bars = {};
  }
  function append(name, points) {
    const series = state.series[name];
    for (const p of points) series.push(p);
    const oldest = series[series.length - 1][1] - windowS();
    let cut = 0;
    while (cut < series.length && series[cut][1] < oldest) cut++;
    if (cut) series.splice(0, cut);
  }

  // --- drawing helpers --------------------------------------------------------------------
  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px DejaVu Sans, Liberation Sans, Arial, sans-serif";
    ctx.textBaseline = "middle";
    return { ctx, w, h };
  }
  const color = (i, n) => `hsl(${(200 + (i * 360) / Math.max(n, 1)) % 360}, 70%, 62%)`;
  function si(value, unit) {
    if (value === null || value === undefined) return "–";
    if (unit === "V") {
      const a = Math.abs(value);
      if (a >= 1) return value.toFixed(2) + " V";
      if (a >= 1e-3) return (value * 1e3).toFixed(2) + " mV";
      return (value * 1e6).toFixed(1) + " µV";
    }
    return value.toPrecision(3) + (unit ? " " + unit : "");
  }
  function waiting(ctx, w, h, what) {
    ctx.fillStyle = "#8493a6"; ctx.textAlign = "center";
    ctx.fillText(what, w / 2, h / 2); ctx.textAlign = "left";
  }
  // One strip: points [index, t, values...] over the window ending at tEnd.
  function strip(ctx, points, pick, x0, width, y0, height, tEnd, low, high) {
    const span = windowS(), scale = high > low ? height / (high - low) : 0;
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      const v = pick(p);
      if (v === null || v === undefined) { started = false; continue; }
      const x = x0 + width * (1 - (tEnd - p[1]) / span);
      const y = y0 + height - (v - low) * scale;
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    }
    ctx.stroke();
  }
  function extent(points, pick) {
    let low = Infinity, high = -Infinity;
    for (const p of points) {
      const v = pick(p);
      if (v === null || v === undefined) continue;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    return low <= high ? [low, high] : [0, 1];
  }

  // --- EMG strips -------------------------------------------------------------------------
  function drawEmg() {
    const { ctx, w, h } = prepare($("emg-canvas"));
    const meta = state.meta && state.meta.streams.envelope;
    const env = state.series.envelope, raw = state.series.raw;
    const names = meta && meta.channels.length ? meta.channels
      : (state.meta && state.meta.streams.raw.channels) || [];
    if (!names.length) return waiting(ctx, w, h, "waiting for " + topic("envelope"));
    const mvc = meta && meta.mvc, unit = meta ? meta.unit : "";
    $("emg-info").textContent = `${topic("envelope")} · ${mvc ? "% MVC" : unit} · ` +
      `${windowS()} s` + ($("raw-toggle").checked ? ` · raw ${topic("raw")} in grey` : "");
    const labelW = 118, x0 = labelW, width = w - labelW - 6, stripH = h / names.length;
    const newest = env.length ? env[env.length - 1] : null;
    const tEnd = newest ? newest[1] : (raw.length ? raw[raw.length - 1][1] : 0);
    names.forEach((name, c) => {
      const y0 = c * stripH, inner = stripH - 6;
      ctx.strokeStyle = "#2a3544"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x0, y0 + stripH - 0.5); ctx.lineTo(w, y0 + stripH - 0.5); ctx.stroke();
      if (raw.length && $("raw-toggle").checked) {
        const peak = extent(raw, (p) => Math.max(Math.abs(p[2][c]), Math.abs(p[3][c])))[1];
        const r = Math.max(peak, 1e-12), mid = y0 + 3 + inner / 2, k = inner / 2 / r;
        ctx.strokeStyle = "rgba(180,190,205,0.45)"; ctx.beginPath();
        for (const p of raw) {
          const x = x0 + width * (1 - (tEnd - p[1]) / windowS());
          ctx.moveTo(x, mid - p[3][c] * k); ctx.lineTo(x, mid - p[2][c] * k + 0.5);
        }
        ctx.stroke();
      }
      const pick = (p) => p[2][c];
      const high = Math.max(extent(env, pick)[1], mvc ? 0.05 : 1e-9);
      ctx.strokeStyle = color(c, names.length); ctx.lineWidth = 1.6;
      strip(ctx, env, pick, x0, width, y0 + 3, inner, tEnd, 0, high);
      const value = newest ? newest[2][c] : null;
      ctx.fillStyle = "#d8e0ea"; ctx.fillText(name, 6, y0 + stripH * 0.35);
      ctx.fillStyle = color(c, names.length);
      ctx.fillText(mvc ? (value === null ? "–" : (value * 100).toFixed(1) + " %") : si(value, unit),
        6, y0 + stripH * 0.72);
      if (newest) api.charts["envelope/" + name] = { index: newest[0], t: newest[1], value };
      if (raw.length) {
        const last = raw[raw.length - 1];
        api.charts["raw/" + name] = { index: last[0], t: last[1], min: last[2][c], max: last[3][c] };
      }
    });
  }

  // --- MVC bars ---------------------------------------------------------------------------
  function drawBars() {
    const { ctx, w, h } = prepare($("mvc-canvas"));
    const meta = state.meta && state.meta.streams.envelope;
    const env = state.series.envelope;
    if (!meta || !meta.mvc) {
      $("mvc-info").textContent = "";
      return waiting(ctx, w, h, meta && meta.channels.length
        ? `envelope in ${meta.unit || "?"}: no MVC known (calibrate with ~/calibrate_mvc)`
        : "waiting for " + topic("envelope"));
    }
    $("mvc-info").textContent = "% of MVC, newest sample";
    const names = meta.channels, newest = env.length ? env[env.length - 1] : null;
    const labelW = 70, top = 14, rowH = (h - top) / names.length, full = (w - labelW - 50) / 1.2;
    ctx.strokeStyle = "#2a3544"; ctx.fillStyle = "#8493a6"; ctx.textAlign = "center";
    for (const pct of [0, 25, 50, 75, 100]) {
      const x = labelW + (full * pct) / 100;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, h); ctx.stroke();
      ctx.fillText(pct + "%", x, 6);
    }
    ctx.textAlign = "left";
    names.forEach((name, c) => {
      const value = newest ? newest[2][c] : null, y = top + c * rowH;
      const pct = value === null ? 0 : value * 100;
      ctx.fillStyle = "#d8e0ea"; ctx.fillText(name, 4, y + rowH / 2);
      ctx.fillStyle = pct > 100 ? "#ef5350" : color(c, names.length);
      ctx.fillRect(labelW, y + rowH * 0.2, (full * Math.min(Math.max(pct, 0), 120)) / 100, rowH * 0.6);
      ctx.fillStyle = "#d8e0ea";
      ctx.fillText(value === null ? "–" : pct.toFixed(1), labelW + full * 1.2 + 6, y + rowH / 2);
      api.bars[name] = value === null ? null : pct;
    });
  }

  // --- joint angles -----------------------------------------------------------------------
  function drawAngles() {
    const { ctx, w, h } = prepare($("angles-canvas"));
    const dofs = state.meta ? state.meta.dofs : [];
    const pts = state.series.joints;
    if (!dofs.length) return waiting(ctx, w, h, "waiting for " + topic("joints"));
    $("angles-info").textContent = `${topic("joints")} · rotations in degrees, translations in mm`;
    const cols = w > 1100 ? 5 : 3, rows = Math.ceil(dofs.length / cols);
    const cellW = w / cols, cellH = h / rows, newest = pts.length ? pts[pts.length - 1] : null;
    const tEnd = newest ? newest[1] : 0;
    dofs.forEach((dof, d) => {
      const x0 = (d % cols) * cellW + 6, y0 = Math.floor(d / cols) * cellH;
      const pick = (p) => (p[2][d] === null ? null : p[2][d] * dof.scale);
      let [low, high] = extent(pts, pick);
      const minSpan = 5;  // degrees or mm: a still joint is not blown up into noise
      if (high - low < minSpan) { const mid = (high + low) / 2; low = mid - minSpan / 2; high = mid + minSpan / 2; }
      ctx.strokeStyle = "#2a3544"; ctx.strokeRect(x0, y0 + 18, cellW - 12, cellH - 24);
      ctx.strokeStyle = color(d, dofs.length); ctx.lineWidth = 1.4;
      strip(ctx, pts, pick, x0, cellW - 12, y0 + 20, cellH - 28, tEnd, low, high);
      const value = newest ? pick(newest) : null;
      ctx.fillStyle = "#d8e0ea"; ctx.fillText(dof.name, x0, y0 + 9);
      ctx.fillStyle = color(d, dofs.length); ctx.textAlign = "right";
      ctx.fillText(value === null ? "–" : value.toFixed(1) + (dof.unit === "deg" ? "°" : " mm"),
        x0 + cellW - 12, y0 + 9);
      ctx.textAlign = "left";
      if (newest) {
        api.charts["joints/" + dof.name] = { index: newest[0], t: newest[1], value,
          position: newest[2][d], unit: dof.unit };
      }
    });
  }

  // --- 3D view ----------------------------------------------------------------------------
  function project(p, w, h) {
    const a = (camera.azimuth * Math.PI) / 180, e = (camera.elevation * Math.PI) / 180;
    const c = camera.center;
    const dx = p[0] - c[0], dy = p[1] - c[1], dz = p[2] - c[2];
    const right = -Math.sin(a) * dx + Math.cos(a) * dy;
    const up = -Math.sin(e) * Math.cos(a) * dx - Math.sin(e) * Math.sin(a) * dy + Math.cos(e) * dz;
    const toward = Math.cos(e) * Math.cos(a) * dx + Math.cos(e) * Math.sin(a) * dy + Math.sin(e) * dz;
    const distance = camera.radius * 3.2 / camera.zoom;
    const k = (Math.min(w, h) * 1.9) / Math.max(distance - toward, 1e-3);
    return [w / 2 + right * k, h / 2 - up * k, toward];
  }
  function fit() {
    const pos = state.markers ? state.markers.pos.filter((p) => p) : [];
    const origins = state.skeleton ? state.skeleton.origins : [];
    const all = pos.concat(origins);
    if (!all.length) return;
    const c = [0, 1, 2].map((i) => all.reduce((s, p) => s + p[i], 0) / all.length);
    camera.center = c;
    camera.radius = Math.max(0.1, ...all.map((p) => Math.hypot(p[0] - c[0], p[1] - c[1], p[2] - c[2])));
  }
  function drawView() {
    const { ctx, w, h } = prepare($("view-canvas"));
    const names = state.meta ? state.meta.markers.names : [];
    if (!state.markers && !state.skeleton) return waiting(ctx, w, h, "waiting for " + topic("markers"));
    if (!camera.center) fit();
    if (!camera.center) return;
    axes(ctx, w, h);
    let lines = 0;
    const skeleton = state.meta && state.meta.skeleton;
    if (skeleton && state.skeleton) {
      ctx.strokeStyle = "#e0e6ee"; ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.beginPath();
      for (const [parent, child] of skeleton.pairs) {
        const a = project(state.skeleton.origins[parent], w, h);
        const b = project(state.skeleton.origins[child], w, h);
        ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); lines++;
      }
      ctx.stroke();
      ctx.fillStyle = "#e0e6ee";
      for (const o of state.skeleton.origins) {
        const s = project(o, w, h); ctx.fillRect(s[0] - 2, s[1] - 2, 4, 4);
      }
    }
    api.skeletonLines = lines;
    const occluded = [], drawn = [];
    if (state.markers) {
      state.markers.pos.forEach((p, i) => {
        const hidden = state.markers.occ[i] === 1;
        if (hidden) occluded.push(names[i] || "#" + i);
        if (p) drawn.push({ s: project(p, w, h), hidden, name: names[i] || "#" + i });
      });
    }
    drawn.sort((a, b) => a.s[2] - b.s[2]);
    const labels = $("labels-toggle").checked;
    for (const m of drawn) {
      ctx.beginPath(); ctx.arc(m.s[0], m.s[1], m.hidden ? 5 : 4.5, 0, 2 * Math.PI);
      if (m.hidden) {
        ctx.setLineDash([2, 2]); ctx.strokeStyle = "#ef5350"; ctx.lineWidth = 1.5; ctx.stroke();
        ctx.setLineDash([]);
      } else { ctx.fillStyle = "#4fc3f7"; ctx.fill(); }
      if (labels) {
        ctx.fillStyle = m.hidden ? "#ef5350" : "#8493a6"; ctx.fillText(m.name, m.s[0] + 7, m.s[1]);
      }
    }
    api.markers = { visible: drawn.filter((m) => !m.hidden).length, occluded };
    $("occluded").textContent = occluded.length
      ? `occluded (dashed, where last seen): ${occluded.join(", ")}` : "no marker occluded";
    api.sync = state.sync || null;
    $("view-info").textContent = `${topic("markers")} · frame ${state.markers ? state.markers.frame : "–"}` +
      syncText(state.sync) +
      (skeleton ? ` · ${skeleton.model}: ${skeleton.pairs.length} segment pairs` : " · no model") +
      " · drag: rotate, wheel: zoom, double-click: reset";
  }
  // Markers and skeleton of one frame (paired), and how far that frame is behind the newest
  // markers; or the skeleton's own lag when no marker frame of its stamp is kept.
  function syncText(sync) {
    if (!sync) return "";
    const ms = Math.round(sync.lag * 1000);
    return sync.paired
      ? ` · skeleton and markers of the same frame${ms > 0 ? `, ${ms} ms behind the newest markers` : ""}`
      : ` · skeleton ${Math.abs(ms)} ms ${ms >= 0 ? "behind" : "ahead of"} the markers (not paired)`;
  }
  function axes(ctx, w, h) {
    const base = [46, h - 40];
    [["x", [1, 0, 0], "#ef5350"], ["y", [0, 1, 0], "#81c784"], ["z", [0, 0, 1], "#4fc3f7"]]
      .forEach(([label, v, col]) => {
        const c = camera.center, r = camera.radius * 0.25;
        const o = project(c, w, h), t = project([c[0] + v[0] * r, c[1] + v[1] * r, c[2] + v[2] * r], w, h);
        const dx = t[0] - o[0], dy = t[1] - o[1], n = Math.hypot(dx, dy) || 1, len = 26 * Math.min(n / 30, 1);
        ctx.strokeStyle = col; ctx.lineWidth = 2; ctx.beginPath();
        ctx.moveTo(base[0], base[1]); ctx.lineTo(base[0] + (dx / n) * len, base[1] + (dy / n) * len);
        ctx.stroke(); ctx.fillStyle = col;
        ctx.fillText(label, base[0] + (dx / n) * (len + 8) - 3, base[1] + (dy / n) * (len + 8));
      });
  }
  function bindView() {
    const canvas = $("view-canvas");
    let drag = null;
    canvas.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; });
    window.addEventListener("mouseup", () => { drag = null; });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      camera.azimuth -= (e.clientX - drag[0]) * 0.5;
      camera.elevation = Math.max(-89, Math.min(89, camera.elevation + (e.clientY - drag[1]) * 0.5));
      drag = [e.clientX, e.clientY]; state.dirty = true;
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault(); camera.zoom = Math.max(0.2, Math.min(8, camera.zoom * Math.exp(-e.deltaY * 0.001)));
      state.dirty = true;
    }, { passive: false });
    canvas.addEventListener("dblclick", () => {
      camera.azimuth = -60; camera.elevation = 15; camera.zoom = 1; fit(); state.dirty = true;
    });
  }

  // --- stream table and delays -----------------------------------------------------------
  const topic = (name) => (state.meta && state.meta.streams[name] ? state.meta.streams[name].topic
    : state.meta && name === "markers" ? state.meta.markers.topic : name);
  function newestT(name) {
    if (name === "markers") return state.markers ? state.markers.t : null;
    const s = state.series[name];
    return s && s.length ? s[s.length - 1][1] : null;
  }
  function measureDelays() {
    const now = (performance.timeOrigin + performance.now()) / 1000;
    for (const [name, received] of Object.entries(state.recv)) {
      if (state.drawnRecv[name] === received) continue;  // nothing new of it on screen
      state.drawnRecv[name] = received;
      const t = newestT(name);
      const sample = { stream: name, receive_ms: (now - received) * 1e3,
        capture_ms: t === null ? null : (now - t) * 1e3 };
      api.delays[name] = sample;
      api.delaySamples.push(sample);
    }
    if (api.delaySamples.length > 2000) api.delaySamples.splice(0, 1000);
  }
  function drawStats() {
    const body = $("stats").tBodies[0];
    const rows = Object.entries(state.stats).map(([name, s]) => {
      const shown = api.delays[name];
      const fmt = (v, digits) => (v === null || v === undefined ? "–" : v.toFixed(digits));
      const stale = s.messages && s.idle_s > 2 ? " bad" : "";
      return `<tr><td>${name}</td><td>${s.topic}</td>` +
        `<td class="${stale}">${s.messages ? fmt(s.msg_rate, 1)
          : name === "raw" ? "taken while shown" : "no messages"}</td>` +
        `<td>${s.messages ? fmt(s.sample_rate, 1) : "–"}</td>` +
        `<td class="${s.gaps ? "warn" : ""}">${s.messages ? s.gaps + (s.missing ? ` (${s.missing} lost)` : "") : "–"}</td>` +
        `<td>${fmt(s.delay_ms, 1)} ms</td><td>${shown ? fmt(shown.receive_ms, 1) + " ms" : "–"}</td></tr>`;
    });
    const html = rows.join("");
    if (body.innerHTML !== html) body.innerHTML = html;
  }

  // --- frame loop -------------------------------------------------------------------------
  function draw() {
    const start = performance.now();
    drawEmg(); drawBars(); drawAngles(); drawView(); drawStats(); measureDelays();
    for (const panel of panels) panel(kit);
    api.frames++;
    const now = performance.now();
    api.drawMs = now - start;
    api.lastDraw = performance.timeOrigin + now;
    state.drawTimes.push(now);
    while (state.drawTimes.length && now - state.drawTimes[0] > 1000) state.drawTimes.shift();
    api.fps = state.drawTimes.length;
    $("fps").textContent = `${api.fps} fps · frame ${api.frames}`;
  }
  function loop() {
    if (state.dirty) {
      state.dirty = false;
      try { draw(); } catch (error) { api.errors++; console.error(error); }
    }
    requestAnimationFrame(loop);
  }
  // What panels of other files draw with (see the top).
  const kit = { $, api, state, prepare, color, si, waiting, strip, extent, windowS, topic };
  $("raw-toggle").addEventListener("change", connect);
  $("labels-toggle").addEventListener("change", () => { state.dirty = true; });
  window.addEventListener("resize", () => { state.dirty = true; });
  bindView();
  connect();
  requestAnimationFrame(loop);
})();
