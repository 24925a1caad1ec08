/** `swarmpay demo`: the README's first command, end to end on a fresh regtest btcd and swtpm. */
import { swarmpay } from './helpers/cli.js';
import { DEMO_FUNDING, DEMO_PAYMENTS, DEMO_PAYMENT_SATS, DEMO_PRICE } from '../src/demo/story.js';

test('demo --json tells the whole story (attested escrow, then 100,000 channel payments) and the balances add up to the sat', async () => {
  const r = await swarmpay(['demo']);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe(''); // --json: nothing but the document
  const d = r.json;
  const txid = expect.stringMatching(/^[0-9a-f]{64}$/);
  expect(d).toMatchObject({
    network: 'regtest',
    workDir: null,
    escrow: { offer_id: expect.stringMatching(/^[0-9a-f]{16}$/), funding_txid: txid, claim_txid: txid, attested: true, item_matches: true },
    channel: { channel_id: expect.stringMatching(/^[0-9a-f]{16}$/), funding_txid: txid, close_txid: txid, payments: DEMO_PAYMENTS },
  });
  const paid = BigInt(DEMO_PAYMENTS) * DEMO_PAYMENT_SATS;
  expect(BigInt(d.channel.paid_sats)).toBe(paid);
  expect(d.channel.payments_per_sec).toBeGreaterThan(0);
  // Every sat accounted for: what the buyer spent is what the seller got plus the four fees.
  const fees = { escrowFunding: BigInt(d.escrow.funding_fee), claim: BigInt(d.escrow.claim_fee), channelFunding: BigInt(d.channel.funding_fee), close: BigInt(d.channel.close_fee) };
  expect(BigInt(d.balances.buyer_sats)).toBe(DEMO_FUNDING - DEMO_PRICE - fees.escrowFunding - fees.channelFunding - paid);
  expect(BigInt(d.balances.seller_sats)).toBe(DEMO_PRICE - fees.claim + paid - fees.close);
  expect(d.seconds).toBeLessThan(60);
});
