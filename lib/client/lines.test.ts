import { describe, expect, it } from '@jest/globals';
import { LineSplitter } from './lines.js';

describe('LineSplitter', () => {
  it('splits lines across chunks and keeps the unterminated rest for end()', () => {
    const s = new LineSplitter();
    expect(s.push('{"a":')).toEqual([]);
    expect(s.push('1}\n\n  {"b":2}\n{"c"')).toEqual(['{"a":1}', '{"b":2}']);
    expect(s.push(':3}')).toEqual([]);
    expect(s.end()).toBe('{"c":3}');
    expect(s.end()).toBeUndefined();
  });

  it('searches each character once: a 1.5 MB event in 1 KB chunks costs linear work', () => {
    const s = new LineSplitter();
    const event = JSON.stringify({ type: 'ADDED', object: { data: 'x'.repeat(1_500_000) } });
    const text = `${event}\n${event}\n`;
    const lines: string[] = [];
    for (let i = 0; i < text.length; i += 1024) lines.push(...s.push(text.slice(i, i + 1024)));
    expect(lines).toEqual([event, event]);
    // Rescanning the buffered rest on every chunk would search ~1.5 GB here.
    expect(s.scanned).toBe(text.length);
  });
});
