/**
 * Fast start (issue 15): a script that pays once per `channel pay` opens the payer's ledger
 * once per payment, and the ledger is read whole at each open; it must not grow with every
 * run before it.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { PayerJournal, payerJournalFile, readPayerLedger, type StatePoint } from '../src/channel/payer-ledger.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, type TestWallet } from './helpers/wallets.js';

let tmp: ReturnType<typeof tempDir>;
let w: TestWallet;
beforeAll(async () => {
  tmp = tempDir();
  w = await testWallet(path.join(tmp.dir, 'payer'));
});
afterAll(() => tmp?.remove());

test('a ledger of many one-payment sessions is rewritten small when opened, and stays the same ledger', async () => {
  const id = 'ab'.repeat(8);
  const file = payerJournalFile(w.networkDir, id);
  let held: StatePoint = { seq: 0, cumulative: 0n };
  const sizes: number[] = [];
  for (let run = 1; run <= 200; run++) {
    // As one `channel pay CHANNEL 1` does: the payee shows what it holds, one payment is reserved, signed and acknowledged.
    const j = PayerJournal.open(w.session, w.networkDir, id);
    j.settle(held, true);
    const next = { seq: held.seq + 1, cumulative: held.cumulative + 1n };
    j.reserve(next, [[`order-${run}`, next.cumulative]]);
    j.settle(next, false);
    held = next;
    await j.close();
    sizes.push(statSync(file).size);
  }
  // What 20 runs add, before any rewrite; 200 runs kept it all would be ten times that.
  const twentyRuns = sizes[19]!;
  expect(Math.max(...sizes)).toBeLessThan(3 * twentyRuns);
  const l = readPayerLedger(w.session, w.networkDir, id);
  expect(l.signed).toEqual(held);
  expect(l.acked).toEqual(held);
  expect(l.paid.size).toBe(200);
  expect(l.pending.size).toBe(0);
});
