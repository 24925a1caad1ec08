import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The jest run (global-setup.cjs): its teardown stops what was left running in its folders only. */
const RUN = process.env.SWARMPAY_TEST_RUN ?? 'solo';

/** A fresh temporary folder; remove() deletes it. */
export function tempDir(prefix = 'swarmpay-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}${RUN}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
