/** Enrollment in-process, for tests: what `tpm enroll` does against `escrow serve`. */
import { readFileSync } from 'node:fs';
import { parseCaBundle } from '../../src/tpm/ek-certificate.js';
import { answerEnrollment, enrollPeer, type EnrollResult } from '../../src/tpm/enroll.js';
import type { Tpm } from '../../src/tpm/tpm.js';
import { generateStaticKey } from '../../src/peer/keys.js';
import type { PeerLink } from '../../src/peer/link.js';
import { connectTcp, listenTcp } from '../../src/peer/transports.js';

/**
 * The buyer enrolls a seller's TPM over a real TCP link: enrollPeer on the buyer's side
 * (trusting the swtpm's local CA), answerEnrollment on the seller's. The AK lands in the
 * trust store of `networkDir`.
 */
export async function enrollTpm(tpm: Tpm, ekCa: string, networkDir: string, label: string): Promise<EnrollResult> {
  const key = generateStaticKey();
  const served: PeerLink[] = [];
  const listener = await listenTcp('127.0.0.1', 0, key, (link) => {
    served.push(link);
    void (async () => {
      try {
        for await (const m of link.messages()) await answerEnrollment(tpm, link, m);
      } catch {
        /* the verifier went away */
      }
    })();
  });
  const link = await connectTcp('127.0.0.1', listener.port, generateStaticKey(), { peerKey: key.publicKey });
  try {
    return await enrollPeer(link, parseCaBundle(readFileSync(ekCa, 'utf8'), ekCa), { networkDir, label });
  } finally {
    await link.close();
    for (const l of served) await l.close();
    await listener.close();
  }
}
