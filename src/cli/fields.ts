/** The human form of `show` commands, apart from output.ts so that defining them loads no colours. */

/** A record as aligned `key value` lines, for the human form of `show` commands. */
export function fieldLines(doc: Record<string, unknown>): string[] {
  return Object.entries(doc).map(([k, v]) => `${k.padEnd(12)} ${typeof v === 'object' && v !== null ? JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) : String(v)}`);
}
