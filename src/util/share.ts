/**
 * Sharing a file with one Unix group, explicitly: the file becomes 0640 in that group and the
 * folders leading to it 0710 in that group (members may enter them, never list them). Nothing
 * is shared unless asked; unsharing puts the folders back to 0700.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError, ioError } from '../errors.js';

export interface ShareGroup {
  group: string;
  gid: number;
}

const SHARED_FILE_MODE = 0o640;
const SHARED_FOLDER_MODE = 0o710;
const PRIVATE_FOLDER_MODE = 0o700;

/** A group name (as `getent group` knows it, so LDAP groups too) or a numeric gid. */
export function resolveGroup(name: string): ShareGroup {
  if (/^\d+$/.test(name)) return { group: name, gid: Number(name) };
  const line = groupLine(name);
  const gid = line?.split(':')[2];
  if (gid === undefined || !/^\d+$/.test(gid)) {
    throw new SwarmpayError('USAGE', `unknown group "${name}"`, { hint: 'name a group you are in (`id -Gn` lists them), or give its numeric gid' });
  }
  return { group: name, gid: Number(gid) };
}

function groupLine(name: string): string | undefined {
  try {
    return execFileSync('getent', ['group', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (e) {
    // getent exits 2 for an unknown name; only a missing getent falls back to the file.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    return readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === name);
  }
}

function setGroupAndMode(file: string, gid: number, mode: number): void {
  try {
    chownSync(file, -1, gid);
    chmodSync(file, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPERM') {
      throw new SwarmpayError('IO_ERROR', `cannot give ${file} to group ${gid}: ${(e as Error).message}`, { hint: 'you can share only with a group you are in (`id -Gn` lists them)' });
    }
    throw ioError('share', file, e);
  }
}

/** Makes `file` readable by `share`'s members, and each of `folders` enterable by them. */
export function shareFile(file: string, folders: string[], share: ShareGroup): void {
  for (const folder of folders) setGroupAndMode(folder, share.gid, SHARED_FOLDER_MODE);
  setGroupAndMode(file, share.gid, SHARED_FILE_MODE);
}

/** Closes folders that shareFile opened: owner only, in the owner's group again. */
export function unshareFolders(folders: string[]): void {
  for (const folder of folders) {
    try {
      chmodSync(folder, PRIVATE_FOLDER_MODE);
      if (process.getgid) chownSync(folder, -1, process.getgid());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('unshare', folder, e);
    }
  }
}

/**
 * The first folder from `dir` up to the root that the group's members may not enter (neither
 * x for others, nor the group's own with x for the group), or null. A member may still get in
 * through another of their groups: this says only what the group alone allows.
 */
export function firstClosedFolder(dir: string, gid: number): string | null {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = statSync(d);
    const open = (st.mode & 0o001) !== 0 || (st.gid === gid && (st.mode & 0o010) !== 0);
    if (!open) return d;
    if (path.dirname(d) === d) return null;
  }
}
