/**
 * A small SVG line chart for the soak report: one panel per series, stacked, sharing the
 * time axis, each scaled to its own range with a dashed line where warm-up ends. Plain
 * strings, no dependency; the soak's own, not shared with the benchmarks' charts.
 */

export interface Series {
  label: string;
  unit: string;
  /** [seconds since start, value] */
  points: [number, number][];
}

const WIDTH = 720;
const PANEL = 110;
const PAD = { left: 70, right: 20, top: 24, bottom: 22 };

export function renderChart(title: string, series: Series[], warmupSeconds: number): string {
  const height = PAD.top + series.length * PANEL + PAD.bottom;
  const tMax = Math.max(1, ...series.flatMap((s) => s.points.map(([t]) => t)));
  const x = (t: number) => PAD.left + ((WIDTH - PAD.left - PAD.right) * t) / tMax;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${PAD.left}" y="15" font-size="13" font-weight="bold">${escape(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const top = PAD.top + i * PANEL;
    const bottom = top + PANEL - 22;
    const values = s.points.map(([, v]) => v);
    const lo = Math.min(0, ...values);
    const hi = Math.max(lo + 1e-9, ...values) * 1.1;
    const y = (v: number) => bottom - ((bottom - top - 8) * (v - lo)) / (hi - lo);
    out.push(
      `<line x1="${PAD.left}" y1="${bottom}" x2="${WIDTH - PAD.right}" y2="${bottom}" stroke="#999"/>`,
      `<line x1="${PAD.left}" y1="${top + 8}" x2="${PAD.left}" y2="${bottom}" stroke="#999"/>`,
      `<text x="${PAD.left - 6}" y="${top + 12}" text-anchor="end">${fmt(hi)}</text>`,
      `<text x="${PAD.left - 6}" y="${bottom}" text-anchor="end">${fmt(lo)}</text>`,
      `<text x="${PAD.left + 6}" y="${top + 12}" fill="#333">${escape(`${s.label} (${s.unit})`)}</text>`,
      `<line x1="${x(warmupSeconds).toFixed(1)}" y1="${top + 8}" x2="${x(warmupSeconds).toFixed(1)}" y2="${bottom}" stroke="#c60" stroke-dasharray="4 3"/>`,
    );
    if (s.points.length > 1) {
      const d = s.points
        .map(([t, v], k) => `${k === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
        .join(' ');
      out.push(`<path d="${d}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/>`);
    }
  });
  const axisY = height - 6;
  for (let k = 0; k <= 4; k++) {
    const t = (tMax * k) / 4;
    out.push(
      `<text x="${x(t).toFixed(1)}" y="${axisY}" text-anchor="middle">${(t / 60).toFixed(1)} min</text>`,
    );
  }
  out.push('</svg>', '');
  return out.join('\n');
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
