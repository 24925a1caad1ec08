/**
 * A command that is bound to be refused says why before it asks for anything: run without a
 * terminal and without --passphrase-file, a bad batch, a payee policy no channel could meet
 * and offer terms no buyer could accept are refused with their own code, not with
 * KEYSTORE_LOCKED (or WRONG_PASSPHRASE) from an unlock they never needed; nothing changes.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { snapshot, swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

describe('refusals come before the passphrase', () => {
  let tmp: ReturnType<typeof tempDir>;
  let run: (...args: string[]) => ReturnType<typeof swarmpay>;
  let file: (name: string, text: string) => string;

  beforeAll(async () => {
    tmp = tempDir();
    const datadir = path.join(tmp.dir, 'd');
    run = (...args) => swarmpay(['--datadir', datadir, '--tpm', 'none', ...args]);
    file = (name, text) => {
      const f = path.join(tmp.dir, name);
      writeFileSync(f, text);
      return f;
    };
    const created = await run('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'words'), '--passphrase-file', file('pass', 'a good long passphrase'));
    expect(created.code).toBe(0);
  });
  afterAll(() => tmp.remove());

  test.each([
    ['a batch with a negative amount', () => ['channel', 'pay', '--batch', file('bad.jsonl', '{"id":"a","channel":"0123456789abcdef","sats":-5}\n')], 'INVALID_AMOUNT', 1],
    ['a batch file that is missing (named in the error)', () => ['channel', 'pay', '--batch', path.join(tmp.dir, 'missing.jsonl')], 'INVALID_FILE', 2],
    ['a payee policy whose least expiry is within its close margin', () => ['channel', 'serve', '--min-expiry', '5', '--close-margin', '10'], 'USAGE', 1],
    ['offer terms whose least timeout is above the most', () => ['escrow', 'offer', '--item', file('item.bin', 'x'), '--price', '5000', '--timeout', '100', '--max-timeout', '10'], 'USAGE', 1],
  ])('%s', async (_what, args, code, exit) => {
    const before = snapshot(path.join(tmp.dir, 'd'));
    for (const extra of [[], ['--passphrase-file', file('wrong', 'not the passphrase at all')]]) {
      const r = await run(...args(), ...extra);
      expect([r.json?.error?.code, r.code]).toEqual([code, exit]);
    }
    expect(snapshot(path.join(tmp.dir, 'd'))).toEqual(before);
  });

  test('the missing batch is named', async () => {
    const r = await run('channel', 'pay', '--batch', path.join(tmp.dir, 'missing.jsonl'));
    expect(r.json.error.message).toContain('missing.jsonl');
  });
});
