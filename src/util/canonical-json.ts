/**
 * Canonical JSON: object keys sorted, no white space, integers only. The same value always
 * gives the same bytes, so they can be hashed, signed or used as AEAD associated data.
 */
export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export function canonicalJson(v: Json): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError(`canonical JSON holds safe integers only, not ${v}`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k]!)}`).join(',')}}`;
}
