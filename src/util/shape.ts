/**
 * Field-by-field checks for JSON read from files or peers. Each reader throws ShapeError
 * naming the path of the bad field; callers turn it into their own error code.
 */
export class ShapeError extends Error {}

export type Obj = Record<string, unknown>;

export function asObj(v: unknown, where: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ShapeError(`${where} must be an object`);
  return v as Obj;
}

export function str(o: Obj, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new ShapeError(`${where}.${k} must be a string`);
  return v;
}

export function int(o: Obj, k: string, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new ShapeError(`${where}.${k} must be an integer in [${min}, ${max}]`);
  return v;
}

export function hex(o: Obj, k: string, where: string, bytes?: number): string {
  const v = str(o, k, where);
  if (!/^([0-9a-f]{2})*$/.test(v) || (bytes !== undefined && v.length !== bytes * 2)) {
    throw new ShapeError(`${where}.${k} must be ${bytes === undefined ? '' : `${bytes} bytes of `}lowercase hex`);
  }
  return v;
}

export function obj(o: Obj, k: string, where: string): Obj {
  return asObj(o[k], `${where}.${k}`);
}
