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
  // A frozen object cannot change, so its text is kept: a keystore of a thousand channels
  // written again for one new channel serializes that channel, not the thousand.
  const frozen = Object.isFrozen(v);
  const known = frozen ? written.get(v) : undefined;
  if (known !== undefined) return known;
  const text = Array.isArray(v) ? `[${v.map(canonicalJson).join(',')}]` : `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k]!)}`).join(',')}}`;
  if (frozen) written.set(v, text);
  return text;
}

const written = new WeakMap<object, string>();

/** Freezes a value and everything in it (what is frozen already is left as it is). */
export function deepFreeze<T extends Json>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
