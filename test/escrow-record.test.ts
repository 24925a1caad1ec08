/**
 * Escrow records (src/escrow/record.ts, read and written by src/escrow/store.ts): one type
 * per role and status, each read back as written; a field out of shape is KEYSTORE_CORRUPT
 * naming it; records as swarmpay wrote them before the statuses were types (nulls beside
 * every status, no `htlc`) are read into the types.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { draftOffer, signOffer, type Offer } from '../src/escrow/offer.js';
import { decodeEscrowRecord, type Acceptance, type EscrowRecord } from '../src/escrow/record.js';
import { findEscrow, getEscrow, listEscrows, nextEscrowKey, saveEscrow } from '../src/escrow/store.js';
import { ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { expectCode, thrown } from './helpers/expect.js';
import { storeRawEscrow } from './helpers/escrow-record.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, type TestWallet } from './helpers/wallets.js';
import { hex } from './helpers/keys.js';

const txid = () => hex(randomBytes(32));

describe('escrow records', () => {
  let tmp: ReturnType<typeof tempDir>;
  let w: TestWallet;
  beforeAll(async () => {
    tmp = tempDir('swarmpay-escrow-record-');
    w = await testWallet(path.join(tmp.dir, 'w'));
  });
  afterAll(() => tmp?.remove());

  /** A signed offer, its K, and an acceptance of it. */
  function escrow(keyIndex: number): { offer: Offer; key: string; acceptance: Acceptance } {
    const seller = contractKey(w.seed, 'regtest', ESCROW_CHAIN, keyIndex);
    const d = draftOffer({ id: hex(randomBytes(8)), network: 'regtest', name: 'item.bin', item: randomBytes(100), price: 50_000n, timeout: { min: 20, max: 100 }, confirmations: 1, seller: seller.pub, expires: new Date(Date.now() + 3_600_000) });
    const offer = signOffer(d.body, seller.priv);
    const buyer = contractKey(w.seed, 'regtest', ESCROW_CHAIN, keyIndex + 1000);
    const acceptance: Acceptance = { format: 'swarmpay-acceptance', version: 1, offer: offer.id, buyer: hex(buyer.pub), timeout: 500, funding: { txid: txid(), vout: 0 }, tx: '0200' };
    return { offer, key: hex(d.key), acceptance };
  }

  /** One record of every role and status. */
  function everyStatus(): EscrowRecord[] {
    const created = new Date().toISOString();
    const at = (i: number) => {
      const e = escrow(i);
      return { id: e.offer.id, offer: e.offer, keyIndex: i, created, key: e.key, acceptance: e.acceptance };
    };
    const s = (i: number) => {
      const { acceptance: _a, ...rest } = at(i);
      return { ...rest, role: 'seller' as const };
    };
    const sold = (i: number, htlc: 'size-checked' | 'legacy' = 'size-checked') => ({ ...at(i), role: 'seller' as const, htlc });
    const b = (i: number, htlc: 'size-checked' | 'legacy' = 'size-checked') => {
      const { key: _k, ...rest } = at(i);
      return { ...rest, role: 'buyer' as const, htlc };
    };
    return [
      { ...s(0), status: 'offered' },
      { ...sold(1), status: 'funded' },
      { ...sold(2, 'legacy'), status: 'claimed', claimTxid: txid() },
      { ...sold(3), status: 'refunded', claimTxid: txid(), refundTxid: txid() },
      { ...sold(4), status: 'refunded', claimTxid: null, refundTxid: txid() },
      { ...b(5), status: 'funded' },
      { ...b(6), status: 'completed', key: hex(randomBytes(32)), claimTxid: txid() },
      // A cheating seller of a legacy escrow may reveal a preimage of another length.
      { ...b(7, 'legacy'), status: 'cheated', key: hex(randomBytes(33)), claimTxid: txid() },
      { ...b(8), status: 'refunded', refundTxid: txid() },
    ];
  }

  test('each role and status is read back as it was written, with no field its status lacks', async () => {
    const recs = everyStatus();
    for (const r of recs) await saveEscrow(w.session, r);
    for (const r of recs) {
      expect(getEscrow(w.session, r.id)).toEqual(r);
      expect(decodeEscrowRecord(JSON.parse(JSON.stringify(r)), 'r')).toEqual(r);
    }
    const offered = getEscrow(w.session, recs[0]!.id);
    for (const k of ['acceptance', 'htlc', 'claimTxid', 'refundTxid']) expect(offered).not.toHaveProperty(k);
    const funded = getEscrow(w.session, recs[5]!.id);
    for (const k of ['key', 'claimTxid', 'refundTxid']) expect(funded).not.toHaveProperty(k);
    expect(listEscrows(w.session).map((r) => `${r.role} ${r.status}`).sort()).toEqual(recs.map((r) => `${r.role} ${r.status}`).sort());
    expect(nextEscrowKey(w.session)).toBe(9);
  });

  test('records as written before the statuses were types (nulls beside every status, no htlc) are read into the types', async () => {
    const created = new Date().toISOString();
    const old = (i: number, role: 'seller' | 'buyer', status: string, fields: object) => {
      const e = escrow(100 + i);
      return { id: e.offer.id, role, offer: e.offer, keyIndex: 100 + i, key: null, acceptance: e.acceptance, status, claimTxid: null, refundTxid: null, created, ...fields };
    };
    const k = hex(randomBytes(32));
    const [c, r] = [txid(), txid()];
    const cases: [ReturnType<typeof old>, object, string[]][] = [
      [old(0, 'seller', 'offered', { key: k, acceptance: null }), { status: 'offered', key: k }, ['acceptance', 'htlc', 'claimTxid', 'refundTxid']],
      [old(1, 'seller', 'funded', { key: k }), { status: 'funded', key: k, htlc: 'legacy' }, ['claimTxid', 'refundTxid']],
      [old(2, 'seller', 'funded', { key: k, htlc: 'size-checked' }), { status: 'funded', htlc: 'size-checked' }, ['claimTxid']],
      [old(3, 'seller', 'claimed', { key: k, claimTxid: c }), { status: 'claimed', claimTxid: c, htlc: 'legacy' }, ['refundTxid']],
      [old(4, 'seller', 'refunded', { key: k, refundTxid: r }), { status: 'refunded', claimTxid: null, refundTxid: r }, []],
      [old(5, 'buyer', 'funded', {}), { status: 'funded', htlc: 'legacy' }, ['key', 'claimTxid', 'refundTxid']],
      [old(6, 'buyer', 'completed', { key: k, claimTxid: c }), { status: 'completed', key: k, claimTxid: c }, ['refundTxid']],
      [old(7, 'buyer', 'cheated', { key: k, claimTxid: c }), { status: 'cheated', key: k, claimTxid: c }, ['refundTxid']],
      [old(8, 'buyer', 'refunded', { refundTxid: r }), { status: 'refunded', refundTxid: r }, ['key', 'claimTxid']],
    ];
    for (const [raw, read, absent] of cases) {
      await storeRawEscrow(w.session, raw.id, raw.keyIndex, raw);
      const rec = getEscrow(w.session, raw.id);
      expect(rec).toMatchObject({ id: raw.id, role: raw.role, offer: raw.offer, keyIndex: raw.keyIndex, created, ...read });
      for (const f of absent) expect(rec).not.toHaveProperty(f);
      // Written again, it is in the new shape, and reads the same.
      await saveEscrow(w.session, rec);
      expect(getEscrow(w.session, raw.id)).toEqual(rec);
    }
  });

  test('a field out of shape is KEYSTORE_CORRUPT naming it', async () => {
    const e = escrow(200);
    const good = { id: e.offer.id, role: 'seller', offer: e.offer, keyIndex: 200, key: e.key, acceptance: e.acceptance, htlc: 'size-checked', status: 'claimed', claimTxid: txid(), created: new Date().toISOString() };
    const bad: [object, RegExp][] = [
      [{ ...good, claimTxid: 'abc' }, /escrows\.[0-9a-f]{16}\.claimTxid must be 32 bytes/],
      [{ ...good, claimTxid: null }, /escrows\.[0-9a-f]{16}\.claimTxid must be/],
      [{ ...good, key: 42 }, /escrows\.[0-9a-f]{16}\.key must be/],
      [{ ...good, keyIndex: -1 }, /escrows\.[0-9a-f]{16}\.keyIndex must be an integer/],
      [{ ...good, status: 'sold' }, /escrows\.[0-9a-f]{16}\.status "sold" is not a status of a seller/],
      [{ ...good, role: 'broker' }, /escrows\.[0-9a-f]{16}\.role must be seller or buyer/],
      [{ ...good, htlc: 'other' }, /escrows\.[0-9a-f]{16}\.htlc must be size-checked or legacy/],
      [{ ...good, acceptance: { ...e.acceptance, funding: { txid: 'zz', vout: 0 } } }, /escrows\.[0-9a-f]{16}\.acceptance\.funding\.txid must be/],
      [{ ...good, acceptance: null }, /escrows\.[0-9a-f]{16}\.acceptance must be an object/],
      [{ ...good, offer: { ...e.offer, price: '-1' } }, /escrows\.[0-9a-f]{16}\.offer\.price must be an amount/],
      [{ ...good, offer: { ...e.offer, id: '00'.repeat(8) } }, /escrows\.[0-9a-f]{16}\.offer\.id is not escrows\.[0-9a-f]{16}\.id/],
    ];
    for (const [raw, message] of bad) {
      await storeRawEscrow(w.session, e.offer.id, 200, raw);
      const err = thrown(() => getEscrow(w.session, e.offer.id));
      expect([err.code, err.message]).toEqual(['KEYSTORE_CORRUPT', expect.stringMatching(message)]);
      expect(thrown(() => findEscrow(w.session, e.offer.id)).code).toBe('KEYSTORE_CORRUPT');
      expect(thrown(() => listEscrows(w.session)).code).toBe('KEYSTORE_CORRUPT');
    }
    // A good record again: read as it is.
    await storeRawEscrow(w.session, e.offer.id, 200, good);
    expect(getEscrow(w.session, e.offer.id)).toEqual(good);
    await expectCode(Promise.resolve().then(() => getEscrow(w.session, '00'.repeat(8))), 'ESCROW_NOT_FOUND');
  });
});
