import { SwarmpayError } from '../../src/errors.js';

/** The error a promise rejects with (fails if it resolves). */
export async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Asserts that `p` rejects with a SwarmpayError of `code`, and returns it. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<SwarmpayError> {
  const e = await failure(p);
  expect(e).toBeInstanceOf(SwarmpayError);
  expect((e as SwarmpayError).code).toBe(code);
  return e as SwarmpayError;
}

/** The SwarmpayError `f` throws (fails if it returns, or throws anything else). */
export function thrown(f: () => unknown): SwarmpayError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmpayError);
    return e as SwarmpayError;
  }
  throw new Error('expected a SwarmpayError');
}
