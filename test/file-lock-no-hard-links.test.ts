/**
 * src/util/file-lock.ts on a filesystem without hard links (vfat, as on an SD card): the
 * lock falls back to creating and writing its file. No such filesystem can be mounted on
 * this machine or in CI, so link(2)'s refusal there (EPERM) is imitated: the one mock in
 * this suite of a real part, for a fault the real parts here cannot show.
 */
import { jest } from '@jest/globals';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/tmp.js';

const fs = await import('node:fs');
jest.unstable_mockModule('node:fs', () => ({
  ...fs,
  linkSync: () => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  },
}));
const { acquireLock, liveLockOwner } = await import('../src/util/file-lock.js');

test('without hard links the lock is still taken, once, with its owner in it, and leaves nothing behind', () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'x.lock');
    const lock = acquireLock(file, 'x');
    expect(liveLockOwner(file)).toBe(process.pid);
    expect(() => acquireLock(file, 'x')).toThrow(expect.objectContaining({ code: 'KEYSTORE_BUSY' }));
    lock.release();
    expect(readdirSync(tmp.dir)).toEqual([]);
  } finally {
    tmp.remove();
  }
});
