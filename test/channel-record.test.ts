/**
 * Channel records as the keystore holds them (src/channel/record.ts, store.ts): each status
 * read back as it was written, a bad field refused as KEYSTORE_CORRUPT naming it, and the
 * shapes older swarmpays wrote read as today's.
 */
import { SwarmpayError } from '../src/errors.js';
import { decodeRecord, withState, type ChannelRecord, type PayeeRecord, type PayerRecord } from '../src/channel/record.js';
import { decodeJournalRecord, listChannels, saveChannels } from '../src/channel/store.js';
import { PayerJournal, readPayerLedger } from '../src/channel/payer-ledger.js';
import { tempDir } from './helpers/tmp.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { testWallet } from './helpers/wallets.js';

const terms = { payerPubkey: '02' + '11'.repeat(32), payeePubkey: '03' + '22'.repeat(32), expiry: 1144, capacity: '200000', closeFee: '1410', payeeScript: '0014' + '33'.repeat(20), payerScript: '0014' + '44'.repeat(20) };
const common = { id: '0123456789abcdef', terms, keyIndex: 3, confirmations: 1, closeMargin: 24, peerKey: '55'.repeat(32), created: '2024-05-01T12:00:00.000Z' };
const funding = { txid: 'aa'.repeat(32), vout: 1 };
const bump = { txid: 'bb'.repeat(32), feeRate: '12', fee: '2000', vsize: 160, height: 1100 };
const spend = { txid: 'cc'.repeat(32), height: 1090, bumps: [bump] };
const payer: PayerRecord = { ...common, role: 'payer', peer: { kind: 'tcp', host: '127.0.0.1', port: 9735 }, status: 'open', funding };
const payee: PayeeRecord = { ...common, role: 'payee', status: 'open', funding };

/** The record as the keystore gives it back: JSON, nothing of the object it was. */
const stored = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

function corrupt(v: unknown): SwarmpayError {
  try {
    decodeRecord(v, common.id);
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmpayError);
    expect((e as SwarmpayError).code).toBe('KEYSTORE_CORRUPT');
    return e as SwarmpayError;
  }
  throw new Error('the record was read');
}

describe('channel records', () => {
  const payerStates: ChannelRecord[] = [
    { ...payer, status: 'opening', fundingTx: '0200', ticket: 'ee'.repeat(40) },
    payer,
    withState(payer, { status: 'expired' }),
    withState(payer, { status: 'closing', close: spend }),
    withState(payer, { status: 'closed', close: spend }),
    withState(payer, { status: 'refunding', refund: { ...spend, bumps: [] } }),
    withState(payer, { status: 'refunded', refund: spend }),
    withState(payer, { status: 'failed', reason: 'the payee refused it' }),
    { ...payer, peer: { kind: 'cmd', command: 'ssh payee swarmpay channel serve --stdio' } },
  ];
  const payeeStates: ChannelRecord[] = [
    payee,
    withState(payee, { status: 'expired' }),
    withState(payee, { status: 'closing', close: spend }),
    withState(payee, { status: 'closed', close: spend }),
    withState(payee, { status: 'refunding', refund: spend }),
    withState(payee, { status: 'refunded', refund: spend }),
    withState(payee, { status: 'failed', reason: 'its funding never confirmed' }),
  ];

  test.each([...payerStates, ...payeeStates].map((r) => [`${r.role} ${r.status}${r.role === 'payer' ? ` (${r.peer.kind})` : ''}`, r] as const))('a %s record reads back as written', (_name, rec) => {
    expect(decodeRecord(stored(rec), rec.id)).toEqual(rec);
  });

  test('a new state keeps terms, keys and peer, and drops the fields of the old one', () => {
    const opening: PayerRecord = { ...payer, status: 'opening', fundingTx: '0200', ticket: 'ee'.repeat(40) };
    expect(withState(opening, { status: 'failed', reason: 'x' })).toEqual({ ...payer, status: 'failed', reason: 'x' });
    expect(withState(withState(payee, { status: 'closing', close: spend }), { status: 'refunding', refund: spend })).toEqual({ ...payee, status: 'refunding', refund: spend });
  });

  test.each([
    ['terms.capacity', { ...payer, terms: { ...terms, capacity: 200000 } }],
    ['terms.payerPubkey', { ...payer, terms: { ...terms, payerPubkey: 'zz' } }],
    ['keyIndex', { ...payer, keyIndex: -1 }],
    ['peerKey', { ...payer, peerKey: 'AB'.repeat(32) }],
    ['peer.port', { ...payer, peer: { kind: 'tcp', host: 'h', port: '9735' } }],
    ['peer.kind', { ...payer, peer: { kind: 'ssh', host: 'h' } }],
    ['funding.vout', { ...payer, funding: { txid: funding.txid, vout: 1.5 } }],
    ['close.bumps[0].fee', { ...payer, status: 'closing', close: { ...spend, bumps: [{ ...bump, fee: 2000 }] } }],
    ['close.bumps[0].feeRate', { ...payer, status: 'closing', close: { ...spend, bumps: [{ ...bump, feeRate: 12 }] } }],
    ['close.bumps[0].feeRate', { ...payer, status: 'closing', close: { ...spend, bumps: [{ ...bump, feeRate: '2.5001' }] } }],
    ['close.bumps[0].feeRate', { ...payer, status: 'closing', close: { ...spend, bumps: [{ ...bump, feeRate: '1e3' }] } }],
    // Every rate this wallet bumps at is within the policy: a 0 would stall the next bump's climb.
    ['close.bumps[0].feeRate', { ...payer, status: 'closing', close: { ...spend, bumps: [{ ...bump, feeRate: '0' }] } }],
    ['close.bumps[0].feeRate', { ...payer, status: 'closing', close: { ...spend, bumps: [{ ...bump, feeRate: '99999999999999999999' }] } }],
    ['refund.txid', { ...payee, status: 'refunded', refund: { ...spend, txid: 'cc' } }],
    ['reason', { ...payee, status: 'failed' }],
    ['status', { ...payee, status: 'paused' }],
    ['role', { ...payee, role: 'both' }],
    ['status: a payee stores no opening', { ...payee, status: 'opening', fundingTx: '00', ticket: '00' }],
  ])('a bad %s is KEYSTORE_CORRUPT, naming the field', (field, rec) => {
    expect(corrupt(stored(rec)).message).toContain(`channel ${common.id}.${field}`);
  });

  test('a bump at a fractional rate is kept as written ("2.25" sat/vB); a whole one as earlier versions wrote it ("12") reads the same', () => {
    const fractional = withState(payee, { status: 'closing', close: { ...spend, bumps: [bump, { ...bump, txid: 'dd'.repeat(32), feeRate: '2.25' }] } });
    expect(decodeRecord(stored(fractional), common.id)).toEqual(fractional);
    const whole = withState(payee, { status: 'closing', close: spend });
    expect(decodeRecord(stored(whole), common.id)).toEqual(whole);
    expect(FeeRate.parse(bump.feeRate).satPerKvb).toBe(12_000n); // 12 sat/vB, as the payee's next bump reads it
  });

  test('a record that is not an object is KEYSTORE_CORRUPT', () => {
    expect(corrupt('open').message).toMatch(/must be an object/);
  });

  describe('shapes older swarmpays wrote', () => {
    const { closeMargin: _m, ...noMargin } = common;
    const legacyPayer = { ...noMargin, role: 'payer', peer: payer.peer, closeTxid: null, refundTxid: null, funding: { ...funding, hex: '0200' } };
    const legacyPayee = { ...noMargin, role: 'payee', closeTxid: null, refundTxid: null, funding };
    const spendOf = (txid: string) => ({ txid, height: 0, bumps: [] });

    test('an open one: the margin channels had then, the funding as an outpoint', () => {
      expect(decodeRecord({ ...legacyPayer, status: 'open' }, common.id)).toEqual({ ...payer, closeMargin: 6 });
    });

    test('a closing or closed one keeps its close; a refunded one is refunding until the chain is asked', () => {
      expect(decodeRecord({ ...legacyPayee, status: 'closing', closeTxid: 'cc'.repeat(32) }, common.id)).toEqual({ ...payee, closeMargin: 6, status: 'closing', close: spendOf('cc'.repeat(32)) });
      expect(decodeRecord({ ...legacyPayee, status: 'closed', closeTxid: 'cc'.repeat(32) }, common.id)).toEqual({ ...payee, closeMargin: 6, status: 'closed', close: spendOf('cc'.repeat(32)) });
      expect(decodeRecord({ ...legacyPayer, status: 'refunded', refundTxid: 'dd'.repeat(32) }, common.id)).toEqual({ ...payer, closeMargin: 6, status: 'refunding', refund: spendOf('dd'.repeat(32)) });
    });

    test('an opening payer failed (its refund path kept); a payee\'s opening, or one never funded, dropped', () => {
      expect(decodeRecord({ ...legacyPayer, status: 'opening' }, common.id)).toEqual({ ...payer, closeMargin: 6, status: 'failed', reason: 'left opening by an earlier swarmpay' });
      expect(decodeRecord({ ...legacyPayee, status: 'opening' }, common.id)).toBeNull();
      expect(decodeRecord({ ...legacyPayer, status: 'opening', funding: null }, common.id)).toBeNull();
    });

    test('a typed state written before the margin was agreed gets the old margin', () => {
      expect(decodeRecord({ ...noMargin, role: 'payee', status: 'closing', funding, close: spend }, common.id)).toEqual({ ...payee, closeMargin: 6, status: 'closing', close: spend });
    });

    test('a legacy close without its txid is KEYSTORE_CORRUPT, naming it', () => {
      expect(corrupt({ ...legacyPayee, status: 'closing' }).message).toContain('closeTxid');
    });
  });

  test('payment journal records: a good one read as written, a bad field named', () => {
    const r = { ch: common.id, seq: 7, cumulative: '700', sig: 'ab'.repeat(64), ids: ['inv-1'] };
    expect(decodeJournalRecord(stored(r))).toEqual(r);
    expect(() => decodeJournalRecord({ ...r, cumulative: 700 })).toThrow(/cumulative/);
    expect(() => decodeJournalRecord({ ...r, ids: [1] })).toThrow(/ids/);
  });

  describe('in a keystore', () => {
    const dirs: { remove(): void }[] = [];
    const wallet = () => {
      const tmp = tempDir();
      dirs.push(tmp);
      return testWallet(tmp.dir);
    };
    afterAll(() => dirs.forEach((d) => d.remove()));

    test('records saved are listed as saved; a bad one in the table is KEYSTORE_CORRUPT, not taken at its word', async () => {
      const w = await wallet();
      const recs = [...payerStates.slice(1, 2), { ...payee, id: 'fedcba9876543210' }];
      await saveChannels(w.session, recs, false);
      expect(listChannels(w.session)).toEqual(recs);
      await w.session.update((secret) => {
        const channels = secret.channels;
        if (typeof channels !== 'object' || channels === null || Array.isArray(channels)) throw new Error('no channel table');
        secret.channels = { ...channels, [payer.id]: { ...payer, keyIndex: 'three' } };
      });
      expect(() => listChannels(w.session)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT', message: expect.stringContaining('keyIndex') }));
    });

    test('a payer ledger entry of a bad shape is KEYSTORE_CORRUPT', async () => {
      const w = await wallet();
      const j = PayerJournal.open(w.session, w.networkDir, common.id);
      j.reserve({ seq: 2, cumulative: 200n }, [['inv-1', 100n]]);
      await j.close();
      expect(readPayerLedger(w.session, w.networkDir, common.id)).toMatchObject({ signed: { seq: 2, cumulative: 200n }, pending: new Map([['inv-1', 100n]]) });
      const { journal } = w.session.openJournal(`${w.networkDir}/channels/payer-${common.id}.journal`, `channel-payer/${common.id}`, 'channel-payer');
      journal.append([{ t: 'settle', seq: 2, c: 200, rebase: false }]);
      await w.session.closeJournal(`channel-payer/${common.id}`);
      expect(() => readPayerLedger(w.session, w.networkDir, common.id)).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT', message: expect.stringContaining('payer ledger entry.c') }));
    });
  });
});
