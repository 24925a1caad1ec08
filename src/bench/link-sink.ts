/**
 * The far end of `limit.link_payments_per_sec` in `npm run bench`: a process that takes
 * payments frames over the same Noise link as a payee, reads every payment (the same
 * codec), and acknowledges each frame; no signature, no verification, no disk. What the
 * link and the frame packing carry here is the ceiling the payment protocol can reach.
 * Prints `{"port": N, "key": HEX}` and serves until stdin closes.
 */
import { generateStaticKey } from '../peer/keys.js';
import { listenTcp } from '../peer/transports.js';
import { encodeMessage } from '../channel/messages.js';
import { readPayments } from '../channel/payments-codec.js';

const key = generateStaticKey();
const server = await listenTcp('127.0.0.1', 0, key, (link) => {
  void (async () => {
    let last = 0;
    const sink = { payment: (seq: number) => void (last = seq), state: () => undefined };
    for await (const frame of link.messages()) {
      readPayments(frame, sink);
      link.send(encodeMessage({ t: 'ack', id: '0000000000000000', seq: last }));
    }
  })().catch(() => undefined);
});
process.stdout.write(JSON.stringify({ port: server.port, key: key.publicKey.toString('hex') }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
