// biosig_ros live view: joint torques of the chosen DoFs (torque_node's torque/muscle and
// torque/inverse_dynamics) on one time axis: one colour per DoF, muscle model solid, inverse
// dynamics dashed. Drawn by app.js's frame loop (window.__liveViewPanels); what was drawn goes
// to __liveView.charts["torque_muscle/<dof>"] etc. and __liveView.torques.
"use strict";
(() => {
  const SOURCES = [
    { stream: "torque_muscle", label: "muscle model", dash: [] },
    { stream: "torque_inverse_dynamics", label: "inverse dynamics", dash: [6, 4] },
  ];
  const IDLE_S = 2.0;  // a topic silent this long is said to have stopped
  const MIN_SPAN = 1.0;  // N.m: a still joint is not blown up into noise

  // From the stream statistics (once a second) and, sooner, the arrival times every frame has.
  function status(kit, stream) {
    const s = kit.state.stats[stream];
    if (!kit.state.recv[stream] && (!s || !s.messages)) return "not publishing";
    return s && s.messages && s.idle_s > IDLE_S ? `stopped ${s.idle_s.toFixed(0)} s ago` : "";
  }
  // The vertical scale: 0 N.m and the bulk of the values (2nd to 98th percentile, with a
  // margin); the whole range when it is not much wider. Inverse dynamics has spikes of
  // thousands of N.m where IK's pose jumps (a looping replay): drawn at the scale's edge rather
  // than flattening every other trace.
  function yRange(kit) {
    const values = [];
    for (const { stream } of SOURCES) {
      for (const p of kit.state.series[stream]) {
        for (const v of p[2]) if (v !== null) values.push(v);
      }
    }
    values.sort((a, b) => a - b);
    const n = values.length, at = (f) => values[Math.floor(f * (n - 1))];
    let low = n ? Math.min(0, at(0.02)) : 0, high = n ? Math.max(0, at(0.98)) : 0;
    if (high - low < MIN_SPAN) { const mid = (high + low) / 2; low = mid - MIN_SPAN / 2; high = mid + MIN_SPAN / 2; }
    const span = high - low;
    low -= 0.25 * span; high += 0.25 * span;
    if (n && values[0] >= low - span && values[n - 1] <= high + span) {
      low = Math.min(low, values[0]); high = Math.max(high, values[n - 1]);
    }
    const pad = 0.05 * (high - low);
    const clipped = n > 0 && (values[0] < low - pad || values[n - 1] > high + pad);
    return { low: low - pad, high: high + pad, clipped, min: values[0], max: values[n - 1] };
  }
  function niceStep(span, count) {
    const raw = span / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 5, 10].map((k) => k * power).find((step) => step >= raw);
  }

  function drawTorques(kit) {
    const { state, api, $ } = kit;
    const meta = state.meta && state.meta.torques;
    const dofs = meta ? meta.dofs : [];
    $("torques-panel").style.display = dofs.length ? "" : "none";
    api.torques = { dofs, note: "", drawn: 0 };
    if (!dofs.length) return;
    $("torques-canvas").style.height = `${200 + 18 * dofs.length}px`;  // the legend's rows
    const { ctx, w, h } = kit.prepare($("torques-canvas"));
    const topics = SOURCES.map((s) => kit.topic(s.stream));
    const statuses = SOURCES.map((s) => status(kit, s.stream));
    const points = SOURCES.map((s) => state.series[s.stream]);
    $("torques-info").textContent = `${meta.unit} · ${kit.windowS()} s · solid: ` +
      `${topics[0]}, dashed: ${topics[1]}`;
    if (!points[0].length && !points[1].length) {
      const silent = statuses.every((s) => s === "not publishing");
      const note = silent
        ? `no torque topic is publishing: ${topics.join(", ")} (torque_node, in the exo_demo graph)`
        : `no torques of ${dofs.join(", ")} yet`;
      api.torques.note = note;
      return kit.waiting(ctx, w, h, note);
    }
    const legendH = 18 * dofs.length + 8, axisW = 64, x0 = axisW, width = w - axisW - 8;
    const y0 = legendH, height = h - legendH - 22;
    const newest = points.map((p) => (p.length ? p[p.length - 1] : null));
    const tEnd = Math.max(...newest.filter((p) => p).map((p) => p[1]));
    const { low, high, clipped, min, max } = yRange(kit);
    const toY = (v) => y0 + height - ((v - low) / (high - low)) * height;
    const clamp = (v) => (v === null ? null : Math.min(high, Math.max(low, v)));
    if (clipped) {
      $("torques-info").textContent += ` · beyond the scale (${min.toFixed(0)} to ` +
        `${max.toFixed(0)} ${meta.unit} in this window): drawn at its edge`;
    }
    // axes: N.m ticks, 0 N.m line, seconds before the newest torque
    ctx.lineWidth = 1; ctx.fillStyle = "#8493a6"; ctx.textAlign = "right";
    const step = niceStep(high - low, 5);
    for (let v = Math.ceil(low / step) * step; v <= high; v += step) {
      ctx.strokeStyle = Math.abs(v) < step / 2 ? "#56647a" : "#2a3544";
      ctx.beginPath(); ctx.moveTo(x0, toY(v)); ctx.lineTo(x0 + width, toY(v)); ctx.stroke();
      ctx.fillText(`${+v.toFixed(6)}`, x0 - 6, toY(v));
    }
    ctx.fillText(meta.unit, x0 - 6, y0 - 8);
    ctx.textAlign = "center";
    const span = kit.windowS(), tick = niceStep(span, 5);
    for (let s = 0; s <= span + 1e-9; s += tick) {
      ctx.fillText(s ? `−${+s.toFixed(3)} s` : "0 s", x0 + width * (1 - s / span), y0 + height + 12);
    }
    ctx.textAlign = "left";
    // traces and legend
    dofs.forEach((dof, d) => {
      const colour = kit.color(d, dofs.length);
      SOURCES.forEach((source, k) => {
        ctx.strokeStyle = colour; ctx.lineWidth = 1.6; ctx.setLineDash(source.dash);
        kit.strip(ctx, points[k], (p) => clamp(p[2][d]), x0, width, y0, height, tEnd, low, high);
        const last = newest[k], value = last ? last[2][d] : null;
        const missing = (state.meta.streams[source.stream].missing || []).includes(dof);
        const x = x0 + 8 + k * Math.max(260, width / 2), y = 10 + 18 * d;
        ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 26, y); ctx.stroke();
        ctx.setLineDash([]);
        const note = statuses[k] || (missing ? `${dof} not in ${topics[k]}` : "");
        ctx.fillStyle = note ? "#ffb74d" : "#d8e0ea";
        ctx.fillText(`${dof} · ${source.label}: ` + (note ||
          (value === null ? "–" : `${value.toFixed(2)} ${meta.unit}`)), x + 32, y);
        const finite = points[k].filter((p) => p[2][d] !== null).length;
        api.torques.drawn += finite;
        if (last) {
          api.charts[`${source.stream}/${dof}`] = { index: last[0], t: last[1], value,
            points: finite, unit: meta.unit };
        }
      });
    });
    ctx.setLineDash([]);
    api.torques.note = statuses.map((s, k) => (s ? `${topics[k]}: ${s}` : "")).filter((s) => s)
      .join("; ");
  }

  (window.__liveViewPanels = window.__liveViewPanels || []).push(drawTorques);
})();
