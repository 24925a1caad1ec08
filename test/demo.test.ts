/** `swarmpay demo`: the README's first command, end to end on a fresh regtest btcd and swtpm. */
import { swarmpay } from './helpers/cli.js';
import { DEMO_FUNDING, DEMO_PAYMENTS, DEMO_PAYMENT_SATS, DEMO_PRICE, runDemo } from '../src/demo/story.js';

test('demo --json tells the whole story (attested escrow, then 100,000 channel payments) and the balances add up to the sat', async () => {
  const r = await swarmpay(['demo']);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe(''); // --json: nothing but the document
  const d = r.json;
  const txid = expect.stringMatching(/^[0-9a-f]{64}$/);
  expect(d).toMatchObject({
    network: 'regtest',
    workDir: null,
    escrow: {
      offer_id: expect.stringMatching(/^[0-9a-f]{16}$/), funding_txid: txid, claim_txid: txid, attested: true, item_matches: true,
      // The quote was by the AK the buyer enrolled: its EK certificate by the demo swtpm's local CA.
      ak_name: expect.stringMatching(/^000b[0-9a-f]{64}$/), ak_enrolled: true, ek_issuer: 'CN=swtpm-localca', tpm_ca: 'CN=swtpm-localca-rootca',
    },
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

test("the story says each step of the attested offer's enrollment in a line, in order: EK certificate, CA, credential activation, trust store, quote by the enrolled AK", async () => {
  const steps: string[] = [];
  const r = await runDemo({ keep: false, onStep: (m) => steps.push(m) });
  const ak = r.escrow.ak_name.slice(0, 16);
  const story = [
    new RegExp(`^seller's TPM showed its EK certificate \\(rsa-2048, by "CN=swtpm-localca"\\) and its AK ${ak}…$`),
    /^buyer checked the EK certificate chains to the demo swtpm's local CA "CN=swtpm-localca-rootca" \(.*ek-ca\.pem\), the CA it trusts$/,
    /^credential activation: the buyer sealed a secret to that EK and the AK's name; the seller's TPM recovered it, so the AK lives in the certified TPM$/,
    new RegExp(`^buyer recorded AK ${ak}… \\("demo seller"\\) in its trust store$`),
    /^seller offered calibration\.txt .*quoted by its TPM$/,
    new RegExp(`^buyer verified the seller's quote: signed by the enrolled AK ${ak}… \\("demo seller"\\), over the buyer's own nonce \\(H\\(offer digest \\|\\| nonce\\)\\), PCRs 0-7 as expected$`),
    /^buyer funded the escrow: [0-9a-f]{64}$/,
  ];
  const at = story.map((re) => steps.findIndex((s) => re.test(s)));
  expect(at.every((i) => i >= 0)).toBe(true);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
  expect(r.escrow).toMatchObject({ attested: true, ak_enrolled: true, item_matches: true });
});
