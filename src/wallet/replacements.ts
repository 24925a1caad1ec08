/**
 * Which of the wallet's payments replaced which (`wallet bump`), for `wallet history`: once
 * a replacement is in the mempool the node forgets the payment it replaced, so only the
 * wallet can say that a transaction is a bump. One JSON line per replacement in
 * `replacements.jsonl` beside the keystore, appended after the broadcast. A process killed
 * between the two loses the label only (the bump shows as a send), and a torn last line
 * is skipped when read: nothing here moves coins.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ioError } from '../errors.js';

const FILE = 'replacements.jsonl';
const TXID = /^[0-9a-f]{64}$/;

/** Records that `txid` replaced `replaces`; durable before it returns. */
export function recordReplacement(networkDir: string, txid: string, replaces: string): void {
  const file = path.join(networkDir, FILE);
  try {
    const fd = openSync(file, 'a', 0o600);
    try {
      // A line of its own even after a line a crash tore (a blank line between is skipped).
      appendFileSync(fd, '\n' + JSON.stringify({ txid, replaces }) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw ioError('write', file, e);
  }
}

/** Each replacement's txid → the txid it replaced. */
export function readReplacements(networkDir: string): Map<string, string> {
  const file = path.join(networkDir, FILE);
  const out = new Map<string, string>();
  if (!existsSync(file)) return out;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError('read', file, e);
  }
  for (const line of text.split('\n')) {
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    const { txid, replaces } = (rec ?? {}) as { txid?: unknown; replaces?: unknown };
    if (typeof txid === 'string' && typeof replaces === 'string' && TXID.test(txid) && TXID.test(replaces)) out.set(txid, replaces);
  }
  return out;
}
