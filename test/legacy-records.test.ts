/**
 * Records that earlier swarmpays wrote, read by today's shape-checked decoders: one refused
 * would lock the user out of every channel or escrow of the datadir (list, serve's tick,
 * refund), so each shape a released version wrote must still read.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { draftOffer, signOffer } from '../src/escrow/offer.js';
import { findEscrow, listEscrows } from '../src/escrow/store.js';
import { decodeRecord } from '../src/channel/record.js';
import { listChannels } from '../src/channel/store.js';
import { ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { storeRawEscrow } from './helpers/escrow-record.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, type TestWallet } from './helpers/wallets.js';
import { hex } from './helpers/keys.js';
import type { Json } from '../src/util/canonical-json.js';

describe('records earlier versions wrote', () => {
  let tmp: ReturnType<typeof tempDir>;
  let w: TestWallet;
  beforeAll(async () => {
    tmp = tempDir();
    w = await testWallet(path.join(tmp.dir, 'w'));
  });
  afterAll(() => tmp?.remove());

  test('an escrow offered with --confirmations 0 (the first escrow version took it) reads, and so do the others', async () => {
    const mk = (i: number, confirmations: number) => {
      const seller = contractKey(w.seed, 'regtest', ESCROW_CHAIN, i);
      const d = draftOffer({ id: hex(randomBytes(8)), network: 'regtest', name: 'item.bin', item: randomBytes(10), price: 50_000n, timeout: { min: 20, max: 100 }, confirmations: 1, seller: seller.pub, expires: new Date(Date.now() + 3_600_000) });
      const offer = { ...signOffer(d.body, seller.priv), confirmations };
      // As b4256bf stored it: nulls beside every status, no htlc.
      return { id: offer.id, role: 'seller', offer, keyIndex: i, key: hex(d.key), acceptance: null, status: 'offered', claimTxid: null, refundTxid: null, created: new Date().toISOString() };
    };
    const good = mk(0, 1);
    const old = mk(1, 0);
    await storeRawEscrow(w.session, good.id, 0, good);
    expect(listEscrows(w.session)).toHaveLength(1);
    await storeRawEscrow(w.session, old.id, 1, old);
    expect(findEscrow(w.session, old.id)?.offer.confirmations).toBe(0);
    expect(listEscrows(w.session).map((r) => r.id).sort()).toEqual([good.id, old.id].sort());
  });

  test('a payer opening record that kept its funding transaction as funding.tx (a few early versions) reads, its refund path whole', async () => {
    const terms = { payerPubkey: '02' + '11'.repeat(32), payeePubkey: '03' + '22'.repeat(32), expiry: 1144, capacity: '200000', closeFee: '1410', payeeScript: '0014' + '33'.repeat(20), payerScript: '0014' + '44'.repeat(20) };
    const rec = {
      id: '0123456789abcdef', role: 'payer', peer: { kind: 'tcp', host: '127.0.0.1', port: 9735 }, terms, keyIndex: 3, confirmations: 1, closeMargin: 24, peerKey: '55'.repeat(32), created: '2026-11-29T12:00:00.000Z',
      status: 'opening', funding: { txid: 'aa'.repeat(32), vout: 1, tx: '0200' }, ticket: 'ee'.repeat(40),
    };
    expect(decodeRecord(JSON.parse(JSON.stringify(rec)), rec.id)).toMatchObject({ status: 'opening', fundingTx: '0200', funding: { txid: 'aa'.repeat(32), vout: 1 } });
    await w.session.update((s) => {
      s.channels = { [rec.id]: JSON.parse(JSON.stringify(rec)) as Json };
    });
    expect(listChannels(w.session)).toMatchObject([{ id: rec.id, status: 'opening', fundingTx: '0200' }]);
  });
});
