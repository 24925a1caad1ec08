/** `swarmpay demo`: the README's first command, end to end on a fresh regtest btcd. */
import { swarmpay } from './helpers/cli.js';
import { DEMO_FUNDING, DEMO_PAYMENT } from '../src/demo/story.js';

test('demo --json runs the story and the balances add up to the sat', async () => {
  const r = await swarmpay(['demo']);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe(''); // --json: nothing but the document
  const d = r.json;
  expect(d).toMatchObject({ network: 'regtest', workDir: null });
  expect(d.funding.txid).toMatch(/^[0-9a-f]{64}$/);
  expect(d.payment.txid).toMatch(/^[0-9a-f]{64}$/);
  expect(BigInt(d.balances.seller_sats)).toBe(DEMO_PAYMENT);
  expect(BigInt(d.balances.buyer_sats)).toBe(DEMO_FUNDING - DEMO_PAYMENT - BigInt(d.payment.fee));
  expect(d.seconds).toBeLessThan(60);
});
