/**
 * The channel's state machine and the payer's ledger, as properties over many generated
 * cases (fast-check): what moves a status, what refuses a payment, and what the ledger
 * counts as paid or possibly spent, whatever the order of events and crashes.
 */
import fc from 'fast-check';
import path from 'node:path';
import { advance, refusal, type FundingView } from '../src/channel/lifecycle.js';
import { SETTLED, SETTLED_DEPTH, type ChannelRecord, type Status } from '../src/channel/record.js';
import { PayerJournal, readPayerLedger, type PayerLedger } from '../src/channel/payer-ledger.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, type TestWallet } from './helpers/wallets.js';

const EXPIRY = 1000;
const funding = { txid: 'aa'.repeat(32), vout: 0, tx: '00' };
const spendTx = (txid: string) => ({ txid, height: 900, bumps: [] });

const arbRecord: fc.Arbitrary<ChannelRecord> = fc
  .record({
    role: fc.constantFrom('payer' as const, 'payee' as const),
    status: fc.constantFrom<Status>('opening', 'open', 'expired', 'closing', 'closed', 'refunding', 'refunded', 'failed'),
    confirmations: fc.integer({ min: 1, max: 6 }),
    closeMargin: fc.integer({ min: 1, max: 50 }),
  })
  .map(({ role, status, confirmations, closeMargin }) => {
    const base = { id: '0123456789abcdef', terms: { payerPubkey: '', payeePubkey: '', expiry: EXPIRY, capacity: '100000', closeFee: '500', payeeScript: '', payerScript: '' }, keyIndex: 0, confirmations, closeMargin, peerKey: '', created: '' };
    // Only the payer has opening.
    const st = role === 'payee' && status === 'opening' ? 'open' : status;
    const state =
      st === 'opening' ? { status: st, funding, ticket: '00' }
      : st === 'closing' || st === 'closed' ? { status: st, funding, close: spendTx('cc'.repeat(32)) }
      : st === 'refunding' || st === 'refunded' ? { status: st, funding, refund: spendTx('dd'.repeat(32)) }
      : st === 'failed' ? { status: st, funding, reason: 'never opened' }
      : { status: st, funding };
    return { ...base, ...(role === 'payer' ? { role, peer: { kind: 'tcp', host: 'h', port: 1 } } : { role }), ...state } as ChannelRecord;
  });

const arbView: fc.Arbitrary<FundingView> = fc.record({
  confirmations: fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
  spend: fc.option(fc.record({ kind: fc.constantFrom('close' as const, 'refund' as const), txid: fc.constantFrom('cc'.repeat(32), 'ee'.repeat(32)), confirmations: fc.integer({ min: 0, max: 10 }) }), { nil: null }),
});
const arbTip = fc.integer({ min: EXPIRY - 100, max: EXPIRY + 10 });

/** Where each status may go, and nowhere else. */
const NEXT: Record<Status, Status[]> = {
  opening: ['closing', 'closed', 'refunding', 'refunded', 'failed'],
  open: ['expired', 'closing', 'closed', 'refunding', 'refunded', 'failed'],
  expired: ['closing', 'closed', 'refunding', 'refunded', 'failed'],
  closing: ['closed', 'refunding', 'refunded', 'closing', 'failed'],
  refunding: ['refunded', 'closing', 'closed', 'refunding', 'failed'],
  closed: [],
  refunded: [],
  failed: [],
};

describe('the channel state machine', () => {
  test('a status moves only where the chain says, settled ones never, and a move is final for what was seen', () => {
    fc.assert(
      fc.property(arbRecord, arbTip, arbView, fc.boolean(), (rec, tip, seen, closable) => {
        const next = advance(rec, tip, seen, closable);
        if (SETTLED.has(rec.status)) return next === null;
        if (next === null) return true;
        expect(NEXT[rec.status]).toContain(next.status);
        expect(next.role).toBe(rec.role);
        if (seen.spend) {
          const deep = seen.spend.confirmations >= SETTLED_DEPTH;
          expect(next.status).toBe(seen.spend.kind === 'close' ? (deep ? 'closed' : 'closing') : deep ? 'refunded' : 'refunding');
          expect(seen.spend.kind === 'close' ? (next as { close: { txid: string } }).close.txid : (next as { refund: { txid: string } }).refund.txid).toBe(seen.spend.txid);
        } else if (next.status === 'failed') {
          // A funding the node never knew, by the expiry: it holds no coins.
          expect(seen.confirmations).toBeNull();
          expect(tip).toBeGreaterThanOrEqual(EXPIRY);
        } else {
          // Otherwise only the margin moves a channel without a spend: to expired, unless its payee has something to close on.
          expect([rec.status, next.status]).toEqual(['open', 'expired']);
          expect(EXPIRY - tip).toBeLessThanOrEqual(rec.closeMargin);
          expect(rec.role === 'payer' || !closable).toBe(true);
        }
        expect(advance(next, tip, seen, closable)).toBeNull();
        return true;
      }),
      { numRuns: 5000 },
    );
  });

  test('a payment is refused unless the channel is open, funded as agreed, unspent and outside its margin; each refusal has its code', () => {
    fc.assert(
      fc.property(arbRecord, arbTip, arbView, (rec, tip, seen) => {
        const why = refusal(rec, tip, seen);
        const ok = rec.status === 'open' && seen.spend === null && seen.confirmations !== null && seen.confirmations >= rec.confirmations && EXPIRY - tip > rec.closeMargin;
        expect(why === null).toBe(ok);
        if (why === null) return true;
        const code = seen.spend !== null ? 'CHANNEL_SPENT' : rec.status !== 'open' || seen.confirmations === null || seen.confirmations < rec.confirmations ? 'CHANNEL_STATE' : 'CHANNEL_EXPIRING';
        expect(why.code).toBe(code);
        expect(why.hint).toBeTruthy();
        return true;
      }),
      { numRuns: 5000 },
    );
  });
});

describe('the payer\'s ledger', () => {
  let tmp: ReturnType<typeof tempDir>;
  let w: TestWallet;
  beforeAll(async () => {
    tmp = tempDir();
    w = await testWallet(path.join(tmp.dir, 'payer'));
  });
  afterAll(() => tmp?.remove());

  /**
   * A run: payments reserved (some with ids), signed and sent; the payee acknowledges the
   * first k and holds (durably, acknowledged or not) the first h >= k. A run cut short
   * (k < all) ends its session, so the next step reconnects, and the payee shows what it
   * holds. Or the payer crashes (the ledger is reopened from disk).
   */
  const arbSteps = fc.array(
    fc.oneof(
      fc.record({ t: fc.constant('run' as const), sats: fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 12 }), withIds: fc.boolean(), acked: fc.nat(), held: fc.nat() }),
      fc.constant({ t: 'crash' as const }),
    ),
    { maxLength: 25 },
  );
  let n = 0;

  test('an id is paid exactly when the payee holds a state covering it, and stays paid; nothing paid is pending; what may be signed is never below what is acknowledged, and a reopened ledger is the same ledger', async () => {
    await fc.assert(
      fc.asyncProperty(arbSteps, fc.integer({ min: 200, max: 5000 }), async (steps, compactAt) => {
        const id = (n++).toString(16).padStart(16, '0');
        let j = PayerJournal.open(w.session, w.networkDir, id, compactAt);
        // What the payee holds (a state the payer signed); every run's states start from it.
        let held = { seq: 0, cumulative: 0n };
        let signedEver = 0n;
        const paidEver = new Set<string>();
        let pid = 0;
        const check = (l: PayerLedger) => {
          // Paid is exactly what the payee was seen to hold a state for: no more (a stale id a later state covers), no less.
          expect([...l.paid].sort()).toEqual([...paidEver].sort());
          for (const p of l.pending.keys()) expect(l.paid.has(p)).toBe(false);
          expect(l.signed.cumulative >= l.acked.cumulative).toBe(true);
          expect(l.signed.cumulative).toBeGreaterThanOrEqual(signedEver);
        };
        try {
          for (const s of steps) {
            if (s.t === 'crash') {
              await j.close();
              j = PayerJournal.open(w.session, w.networkDir, id, compactAt);
              check(j.ledger);
              continue;
            }
            let c = held.cumulative;
            const levels: bigint[] = [];
            const pids: [string, bigint][] = [];
            for (const x of s.sats) {
              c += BigInt(x);
              levels.push(c);
              if (s.withIds) pids.push([`p${pid++}`, c]);
            }
            j.reserve({ seq: held.seq + s.sats.length, cumulative: c }, pids);
            signedEver = signedEver > c ? signedEver : c;
            const k = s.acked % (s.sats.length + 1);
            const h = k + (s.held % (s.sats.length - k + 1));
            const at = (i: number) => ({ seq: held.seq + i, cumulative: i === 0 ? held.cumulative : levels[i - 1]! });
            const acked = at(k);
            j.settle(acked, false);
            for (const [p, lv] of pids) if (lv <= acked.cumulative) paidEver.add(p);
            check(j.ledger);
            held = at(h);
            if (k < s.sats.length) {
              // The session broke: the next one starts by the payee showing what it holds.
              j.settle(held, true);
              for (const [p, lv] of pids) if (lv <= held.cumulative) paidEver.add(p);
              check(j.ledger);
            }
          }
          const live = j.ledger;
          await j.close();
          const reread = readPayerLedger(w.session, w.networkDir, id);
          expect(reread).toEqual(live);
          return true;
        } finally {
          await j.close();
        }
      }),
      // Each close records the journal's head in the keystore (a write): fewer runs than the pure properties above.
      { numRuns: 80 },
    );
  });
});
