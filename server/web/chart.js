// One uPlot chart of schedule curves: steps on x, values on the left axis, reported metrics (if
// any) on a right axis, vertical marks (milestones, restarts, updates, plateau reductions), a
// "now" line at the highest served step and the provisional steps shaded. Drag to zoom; the
// caller decides what a new range fetches (onZoom).
"use strict";

const Chart = (() => {
  const kColors = ["#2f6fde", "#e8590c", "#12b76a", "#9e44d4", "#c11574", "#0e9384", "#b54708", "#475467"];
  const kMarkColors = {milestone: "#7a5af8", restart: "#f79009", decay: "#98a2b3", phase: "#98a2b3",
                       update: "#d92d20", plateau: "#0ba5ec"};

  // opts: {el, width, height, steps (Float64Array), series: [{label, values}], metrics: [{label,
  // values (aligned, null where none)}], marks: [{step, kind, label}], now, provisionalFrom,
  // onZoom(lo, hi), title}.
  function draw(opts) {
    const data = [opts.steps];
    const series = [{label: "step"}];
    opts.series.forEach((s, i) => {
      data.push(s.values);
      series.push({label: s.label, stroke: kColors[i % kColors.length], width: 1.5, scale: "y",
                   points: {show: false}});
    });
    (opts.metrics || []).forEach((m, i) => {
      data.push(m.values);
      series.push({label: m.label, stroke: kColors[(i + 5) % kColors.length], width: 1, dash: [4, 3],
                   scale: "metric", spanGaps: true, points: {show: true, size: 5}});
    });
    const axes = [{label: "step"}, {scale: "y", label: opts.yLabel || "value", size: 70}];
    if ((opts.metrics || []).length) axes.push({scale: "metric", side: 1, label: "metric", grid: {show: false}, size: 60});

    const drawOverlays = (u) => {
      const ctx = u.ctx;
      const top = u.bbox.top;
      const height = u.bbox.height;
      const [xlo, xhi] = [u.scales.x.min, u.scales.x.max];
      ctx.save();
      if (opts.provisionalFrom !== undefined && opts.provisionalFrom <= xhi) {
        const x0 = u.valToPos(Math.max(opts.provisionalFrom, xlo), "x", true);
        ctx.fillStyle = "rgba(247, 144, 9, 0.12)";
        ctx.fillRect(x0, top, u.bbox.left + u.bbox.width - x0, height);
        ctx.fillStyle = "#b54708";
        ctx.font = `${11 * devicePixelRatio}px system-ui`;
        ctx.fillText("provisional", x0 + 4, top + 14 * devicePixelRatio);
      }
      // Dense schedule marks (a decay every step) would hide the curve: drawn only when sparse.
      const visible = (opts.marks || []).filter((m) => m.step >= xlo && m.step <= xhi);
      const job = visible.filter((m) => m.kind === "update" || m.kind === "plateau");
      const spec = visible.filter((m) => m.kind !== "update" && m.kind !== "plateau");
      const drawn = spec.length * 6 > u.bbox.width / devicePixelRatio ? job : visible;
      ctx.lineWidth = 1 * devicePixelRatio;
      ctx.font = `${10 * devicePixelRatio}px system-ui`;
      for (const m of drawn) {
        const x = Math.round(u.valToPos(m.step, "x", true)) + 0.5;
        ctx.strokeStyle = kMarkColors[m.kind] || "#98a2b3";
        ctx.setLineDash(m.kind === "update" || m.kind === "plateau" ? [] : [3 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
        if (m.kind === "update" || m.kind === "plateau" || m.kind === "milestone" || m.kind === "restart") {
          ctx.fillStyle = kMarkColors[m.kind];
          ctx.fillText(m.label, x + 3, top + height - 4 * devicePixelRatio);
        }
      }
      const now = typeof opts.now === "function" ? opts.now() : opts.now;
      if (now !== undefined && now >= xlo && now <= xhi) {
        const x = Math.round(u.valToPos(now, "x", true)) + 0.5;
        ctx.setLineDash([]);
        ctx.strokeStyle = "#101828";
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
        ctx.fillStyle = "#101828";
        ctx.fillText("now " + now, x + 4, top + 26 * devicePixelRatio);
      }
      ctx.restore();
    };

    const options = {
      title: opts.title || "",
      width: opts.width || Math.max(400, opts.el.clientWidth - 10),
      height: opts.height || 320,
      series,
      axes,
      scales: {x: {time: false}, y: {auto: true}, metric: {auto: true}},
      cursor: {drag: {x: true, y: false, setScale: false}},
      hooks: {
        draw: [drawOverlays],
        setSelect: [(u) => {
          if (u.select.width < 3 || !opts.onZoom) return;
          const lo = Math.max(0, Math.floor(u.posToVal(u.select.left, "x")));
          const hi = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
          u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
          if (hi > lo) opts.onZoom(lo, hi);
        }],
      },
    };
    opts.el.textContent = "";
    return new uPlot(options, data, opts.el);
  }

  return {draw, kColors};
})();
