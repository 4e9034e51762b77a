/**
 * Label and field selector matching, for the fake client's list and watch filtering.
 * Label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma = AND.
 * Field selectors: `path=v`, `path==v`, `path!=v` on dotted paths (`metadata.name`, `spec.nodeName`).
 */
import type { KubeObject } from '../api/index.js';

type Requirement = (labels: Record<string, string>) => boolean;

/** Split on commas that are not inside parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  terms.push(cur);
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

function parseLabelTerm(term: string): Requirement {
  let m = /^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$/.exec(term);
  if (m) {
    const [, key, op, list] = m;
    const values = new Set(list.split(',').map((v) => v.trim()));
    return op === 'in' ? (l) => key in l && values.has(l[key]) : (l) => !(key in l) || !values.has(l[key]);
  }
  m = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
  if (m) {
    const [, key, op, value] = m;
    return op === '!=' ? (l) => l[key] !== value.trim() : (l) => l[key] === value.trim();
  }
  m = /^!\s*([^\s!=]+)$/.exec(term);
  if (m) {
    const key = m[1];
    return (l) => !(key in l);
  }
  if (/^[^\s!=()]+$/.test(term)) return (l) => term in l;
  throw new Error(`unable to parse label selector term ${JSON.stringify(term)}`);
}

export function labelSelectorMatcher(selector: string | undefined): (obj: KubeObject) => boolean {
  if (!selector) return () => true;
  const reqs = splitTerms(selector).map(parseLabelTerm);
  return (obj) => {
    const labels = obj.metadata.labels ?? {};
    return reqs.every((r) => r(labels));
  };
}

function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

export function fieldSelectorMatcher(selector: string | undefined): (obj: KubeObject) => boolean {
  if (!selector) return () => true;
  const reqs = splitTerms(selector).map((term) => {
    const m = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new Error(`unable to parse field selector term ${JSON.stringify(term)}`);
    const [, path, op, value] = m;
    return (obj: KubeObject) => (fieldValue(obj, path) === value.trim()) !== (op === '!=');
  });
  return (obj) => reqs.every((r) => r(obj));
}
