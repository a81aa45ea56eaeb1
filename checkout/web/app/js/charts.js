// Small SVG charts drawn by hand: a line chart over time and a horizontal bar chart.
// Each has a <title> and <desc> for screen readers, plus the numbers as a table nearby.

const NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Round tick values covering [lo, hi], about `count` of them. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function frame(title, description, width, height) {
  const svg = svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  svg.append(svgEl("title", {}, title), svgEl("desc", {}, description));
  return svg;
}

/**
 * A line chart. series: [{label, cls, points: [[x, y], ...]}]; x is event time (s).
 * opts: {title, yLabel, xFormat(x) -> string, width, height}
 */
export function lineChart(series, opts) {
  const width = opts.width || 640;
  const height = opts.height || 260;
  const pad = { left: 44, right: 12, top: 24, bottom: 44 };
  const all = series.flatMap((s) => s.points);
  const desc = all.length
    ? `${series.map((s) => s.label).join(", ")}; ${all.length} points`
    : "no data yet";
  const svg = frame(opts.title, desc, width, height);
  if (!all.length) {
    svg.append(svgEl("text", { x: width / 2, y: height / 2, class: "empty" }, "No data yet"));
    return svg;
  }
  const xs = all.map((p) => p[0]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) > x0 ? Math.max(...xs) : x0 + 1;
  const y1 = Math.max(1, ...all.map((p) => p[1]));
  const sx = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - (y / y1) * (height - pad.top - pad.bottom);
  const axes = svgEl("g", { class: "axes" });
  for (const t of ticks(0, y1, 4).filter((t) => Number.isInteger(t))) {
    axes.append(
      svgEl("line", { x1: pad.left, x2: width - pad.right, y1: sy(t), y2: sy(t), class: "grid" }),
      svgEl("text", { x: pad.left - 6, y: sy(t) + 4, class: "tick y" }, String(t)),
    );
  }
  const xTicks = x1 - x0 > 1 ? ticks(x0, x1, 4) : [x0];
  for (const t of xTicks) {
    axes.append(
      svgEl("text", { x: sx(t), y: height - pad.bottom + 16, class: "tick x" }, opts.xFormat(t)),
    );
  }
  axes.append(
    svgEl("text", { x: 4, y: 12, class: "axis-label" }, opts.yLabel || ""),
  );
  svg.append(axes);
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points
      .map((p, k) => `${k ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
      .join("");
    svg.append(svgEl("path", { d, class: `series s${i} ${s.cls || ""}`, fill: "none" }));
  });
  const legend = svgEl("g", { class: "legend" });
  series.forEach((s, i) => {
    const x = pad.left + i * 190;
    legend.append(
      svgEl("rect", { x, y: height - 12, width: 12, height: 4, class: `swatch s${i}` }),
      svgEl("text", { x: x + 16, y: height - 7 }, s.label),
    );
  });
  svg.append(legend);
  return svg;
}

/**
 * Horizontal bars. bars: [{label, value, note}]; opts: {title, unit, format(v), width}
 */
export function barChart(bars, opts) {
  const width = opts.width || 640;
  const row = 22;
  const pad = { left: 110, right: 70, top: 8, bottom: 8 };
  const height = Math.max(60, pad.top + pad.bottom + row * bars.length);
  const desc = bars.length
    ? bars.map((b) => `${b.label}: ${opts.format(b.value)}`).join("; ")
    : "no data yet";
  const svg = frame(opts.title, desc, width, height);
  if (!bars.length) {
    svg.append(svgEl("text", { x: width / 2, y: height / 2, class: "empty" }, "No data yet"));
    return svg;
  }
  const top = Math.max(...bars.map((b) => b.value || 0), 1e-9);
  const span = width - pad.left - pad.right;
  bars.forEach((b, i) => {
    const y = pad.top + i * row;
    const w = ((b.value || 0) / top) * span;
    svg.append(
      svgEl("text", { x: pad.left - 6, y: y + row * 0.65, class: "tick y" }, b.label),
      svgEl("rect", { x: pad.left, y: y + 3, width: Math.max(w, 1), height: row - 8, class: "bar" }),
      svgEl(
        "text",
        { x: pad.left + Math.max(w, 1) + 4, y: y + row * 0.65, class: "bar-value" },
        b.value === null || b.value === undefined ? "–" : opts.format(b.value),
      ),
    );
  });
  return svg;
}

/**
 * Person tracks on the floor, in metres (y grows upward, as on the floor plan).
 * tracks: [{track_id, points: [[t, x, y], ...]}]; opts: {title, width}
 */
export function trackPlot(tracks, opts) {
  const width = opts.width || 480;
  const all = tracks.flatMap((t) => t.points);
  const desc = tracks.length
    ? tracks.map((t) => `track ${t.track_id}: ${t.points.length} positions`).join("; ")
    : "no tracks";
  if (!all.length) {
    const svg = frame(opts.title, desc, width, 60);
    svg.append(svgEl("text", { x: width / 2, y: 30, class: "empty" }, "No tracks"));
    return svg;
  }
  const pad = 24;
  const xs = all.map((p) => p[1]);
  const ys = all.map((p) => p[2]);
  const [x0, x1] = [Math.min(...xs) - 0.5, Math.max(...xs) + 0.5];
  const [y0, y1] = [Math.min(...ys) - 0.5, Math.max(...ys) + 0.5];
  const scale = Math.min((width - 2 * pad) / (x1 - x0), 300 / (y1 - y0));
  const height = Math.round((y1 - y0) * scale + 2 * pad);
  const sx = (x) => pad + (x - x0) * scale;
  const sy = (y) => height - pad - (y - y0) * scale;
  const svg = frame(opts.title, desc, width, height);
  for (let m = Math.ceil(x0); m <= x1; m += 1) {
    svg.append(svgEl("line", { x1: sx(m), x2: sx(m), y1: pad, y2: height - pad, class: "grid" }));
  }
  for (let m = Math.ceil(y0); m <= y1; m += 1) {
    svg.append(svgEl("line", { x1: pad, x2: width - pad, y1: sy(m), y2: sy(m), class: "grid" }));
  }
  svg.append(svgEl("text", { x: pad, y: height - 6 }, "grid: 1 m"));
  tracks.forEach((t, i) => {
    const d = t.points.map((p, k) => `${k ? "L" : "M"}${sx(p[1]).toFixed(1)},${sy(p[2]).toFixed(1)}`).join("");
    const last = t.points[t.points.length - 1];
    svg.append(
      svgEl("path", { d, class: `series s${i % 2}`, fill: "none" }),
      svgEl("circle", { cx: sx(last[1]), cy: sy(last[2]), r: 4, class: `s${i % 2}` }),
      svgEl("text", { x: sx(last[1]) + 6, y: sy(last[2]) - 6 }, t.track_id),
    );
  });
  return svg;
}
