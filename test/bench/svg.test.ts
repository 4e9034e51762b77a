import { describe, expect, it } from '@jest/globals';
import { formatSummary, ratio, summarize } from './stats.js';
import { escapeXml, niceMax, renderBarChart } from './svg.js';

describe('benchmark statistics', () => {
  it('median of odd and even counts, with min and max; non-finite values dropped', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: 3 });
    expect(summarize([4, 1, 3, 2, NaN])).toEqual({ median: 2.5, min: 1, max: 4, runs: 4 });
    expect(summarize([]).runs).toBe(0);
  });

  it('formats a summary and a ratio of medians', () => {
    expect(formatSummary(summarize([1, 2, 3]))).toBe('2.0 (1.0–3.0)');
    expect(formatSummary(summarize([5]))).toBe('5.0');
    expect(ratio(summarize([3]), summarize([2]))).toBe('1.50×');
    expect(ratio(summarize([3]), summarize([]))).toBe('n/a');
  });
});

describe('renderBarChart', () => {
  it('nice axis maxima', () => {
    expect([0.7, 1, 1.2, 3, 7, 42, 0].map(niceMax)).toEqual([1, 1, 2, 5, 10, 50, 1]);
  });

  it('draws one bar per series and group, scaled to the axis, with whiskers and escaped labels', () => {
    const svg = renderBarChart({
      title: 'a <b> & c',
      unit: 's',
      groups: [
        {
          label: 'qps 20',
          bars: [
            { series: 'ts-kcm', value: 5, min: 4, max: 6 },
            { series: 'KCM', value: 10 },
          ],
        },
        { label: 'qps 1000', bars: [{ series: 'ts-kcm', value: 2.5 }] },
      ],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('a &lt;b&gt; &amp; c');
    expect(svg.match(/<rect x="210"/g)).toHaveLength(3);
    // Axis max 10: 10 s spans the 420 px plot, 5 s half of it.
    expect(svg).toContain('width="420.0"');
    expect(svg).toContain('width="210.0"');
    expect(svg.match(/<path /g)).toHaveLength(1);
    expect(escapeXml(`"x'`)).toBe('&quot;x&apos;');
  });
});
