/**
 * A small SVG bar-chart renderer for docs/charts: grouped horizontal bars (one group per
 * category, one bar per series) with a min–max whisker per bar. No dependency; the output is
 * plain SVG 1.1 that GitHub and browsers render.
 */
export interface Bar {
  series: string;
  /** The median. */
  value: number;
  min?: number;
  max?: number;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChart {
  title: string;
  unit: string;
  groups: BarGroup[];
}

const PALETTE = ['#3b6ea8', '#d9822b', '#5a9e4b', '#a34d9c', '#8c8c8c', '#c23b3b'];
const BAR_H = 16;
const GAP = 4;
const GROUP_GAP = 14;
const LEFT = 210;
const PLOT_W = 420;
const RIGHT = 160;

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

/** A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `x`. */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function fmt(x: number): string {
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toPrecision(2);
}

export function renderBarChart(chart: BarChart): string {
  const series = [...new Set(chart.groups.flatMap((g) => g.bars.map((b) => b.series)))];
  const color = (s: string) => PALETTE[series.indexOf(s) % PALETTE.length]!;
  const top = 40;
  const maxValue = niceMax(Math.max(0, ...chart.groups.flatMap((g) => g.bars.map((b) => b.max ?? b.value))));
  const x = (v: number) => LEFT + (Math.max(0, v) / maxValue) * PLOT_W;
  const parts: string[] = [];
  let y = top;
  for (const g of chart.groups) {
    const groupH = g.bars.length * (BAR_H + GAP) - GAP;
    parts.push(
      `<text x="${LEFT - 8}" y="${y + groupH / 2 + 4}" text-anchor="end">${escapeXml(g.label)}</text>`,
    );
    for (const b of g.bars) {
      const w = Math.max(0, x(b.value) - LEFT);
      parts.push(
        `<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color(b.series)}"><title>${escapeXml(`${b.series}: ${fmt(b.value)} ${chart.unit}`)}</title></rect>`,
      );
      if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
        const cy = y + BAR_H / 2;
        parts.push(
          `<path d="M${x(b.min).toFixed(1)} ${cy}H${x(b.max).toFixed(1)}M${x(b.min).toFixed(1)} ${cy - 4}v8M${x(b.max).toFixed(1)} ${cy - 4}v8" stroke="#222" fill="none"/>`,
        );
      }
      parts.push(
        `<text x="${(Math.max(x(b.value), x(b.max ?? 0)) + 4).toFixed(1)}" y="${y + BAR_H - 4}">${fmt(b.value)}</text>`,
      );
      y += BAR_H + GAP;
    }
    y += GROUP_GAP - GAP;
  }
  const axisY = y;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * maxValue);
  for (const t of ticks) {
    parts.push(`<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${axisY}" stroke="#ddd"/>`);
    parts.push(`<text x="${x(t)}" y="${axisY + 14}" text-anchor="middle">${fmt(t)}</text>`);
  }
  parts.push(
    `<text x="${LEFT + PLOT_W / 2}" y="${axisY + 30}" text-anchor="middle">${escapeXml(chart.unit)}</text>`,
  );
  // Legend, top right.
  series.forEach((s, i) => {
    const ly = 14 + i * 14;
    parts.push(
      `<rect x="${LEFT + PLOT_W + 14}" y="${ly + top - 10}" width="10" height="10" fill="${color(s)}"/>`,
    );
    parts.push(`<text x="${LEFT + PLOT_W + 28}" y="${ly + top - 1}">${escapeXml(s)}</text>`);
  });
  const height = Math.max(axisY + 42, top + series.length * 14 + 10);
  const width = LEFT + PLOT_W + RIGHT;
  // Grid lines first so bars paint over them.
  parts.sort((a, b) => Number(b.startsWith('<line')) - Number(a.startsWith('<line')));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(chart.title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
