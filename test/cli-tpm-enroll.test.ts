/**
 * `swarmpay tpm enroll`, `tpm trust list|remove` and `tpm verify --enrolled` as a user runs
 * them: the software TPM `node start` manufactures (with its EK certificate and the local
 * CA's file it reports) is the attester, served by a small in-test server that answers
 * enrollment the way `escrow serve` does; errors have their documented codes and exits.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateStaticKey } from '../src/peer/keys.js';
import type { PeerLink } from '../src/peer/link.js';
import { listenTcp } from '../src/peer/transports.js';
import { attest } from '../src/tpm/attestation.js';
import { answerEnrollment } from '../src/tpm/enroll.js';
import { Tpm } from '../src/tpm/tpm.js';
import { freePort } from '../src/util/daemon.js';
import { snapshot, swarmpay, type CliResult } from './helpers/cli.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { tempDir } from './helpers/tmp.js';

describe('tpm enroll and the trust store from the command line', () => {
  let tmp: ReturnType<typeof tempDir>;
  let seller: string;
  let buyer: string;
  let nodeTpm: Tpm;
  let ekCa: string;
  let other: TestTpm;
  const servers: { close(): Promise<void> }[] = [];
  const links: PeerLink[] = [];
  const sellerRun = (...args: string[]) => swarmpay(['--datadir', seller, ...args]);
  const run = (...args: string[]) => swarmpay(['--datadir', buyer, ...args]);
  const refused = (r: CliResult, exit: number, code: string) => expect({ exit: r.code, code: r.json?.error?.code }).toEqual({ exit, code });

  /** An attester answering enrollment with `tpm` (null: a server without a TPM); its port and static key. */
  async function serve(tpm: Tpm | null): Promise<{ addr: string; key: string }> {
    const key = generateStaticKey();
    const l = await listenTcp('127.0.0.1', 0, key, (link) => {
      links.push(link);
      void (async () => {
        try {
          for await (const m of link.messages()) await answerEnrollment(tpm, link, m);
        } catch {
          /* the verifier went away */
        }
      })();
    });
    servers.push(l);
    return { addr: `127.0.0.1:${l.port}`, key: key.publicKey.toString('hex') };
  }

  beforeAll(async () => {
    tmp = tempDir();
    seller = path.join(tmp.dir, 'seller');
    buyer = path.join(tmp.dir, 'buyer');
    const started = await sellerRun('node', 'start');
    expect(started.code).toBe(0);
    // node start manufactured the TPM with an EK certificate, and says where its CA is.
    ekCa = started.json.tpm.ekCa;
    expect(ekCa).toBe(path.join(seller, 'regtest', 'tpm', 'ek-ca.pem'));
    expect(readFileSync(ekCa, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN CERTIFICATE-----/);
    nodeTpm = await Tpm.open({ kind: 'swtpm', host: started.json.tpm.host, port: started.json.tpm.port });
    other = await startTestTpm();
  });

  afterAll(async () => {
    for (const l of links) await l.close();
    for (const s of servers) await s.close();
    await nodeTpm?.close();
    await sellerRun('node', 'stop');
    await other?.stop();
    tmp?.remove();
  });

  test("enrolls the seller's TPM with the CA node start reported; list shows it; verify --enrolled trusts its quotes", async () => {
    const { addr, key } = await serve(nodeTpm);
    const r = await run('tpm', 'enroll', '--peer', addr, '--peer-key', key, '--tpm-ca', ekCa, '--label', 'seller one');
    expect(r.code).toBe(0);
    const akName = (await nodeTpm.akPublic()).name.toString('hex');
    expect(r.json).toMatchObject({ enrolled: true, replaced: false, akName, label: 'seller one', peerKey: key, ek: { kind: 'rsa-2048', issuer: 'CN=swtpm-localca' }, ca: { subject: 'CN=swtpm-localca-rootca' } });
    expect(r.json.trustStore).toBe(path.join(buyer, 'regtest', 'tpm-trust.json'));
    // The seller's own status names the same AK.
    expect((await sellerRun('tpm', 'status')).json.akName).toBe(akName);

    const list = await run('tpm', 'trust', 'list');
    expect(list.code).toBe(0);
    expect(list.json.identities).toHaveLength(1);
    expect(list.json.identities[0]).toMatchObject({ akName, label: 'seller one' });

    const nonce = randomBytes(32);
    const doc = path.join(tmp.dir, 'quote.json');
    writeFileSync(doc, JSON.stringify(await attest(nodeTpm, nonce, [0, 7])));
    const v = await run('tpm', 'verify', doc, '--nonce', nonce.toString('hex'), '--enrolled');
    expect(v.code).toBe(0);
    expect(v.json).toMatchObject({ valid: true, akName, akPinned: true, vouchedBy: { akName, label: 'seller one', ca: { subject: 'CN=swtpm-localca-rootca' } } });
    refused(await run('tpm', 'verify', doc, '--nonce', nonce.toString('hex'), '--enrolled', '--ak', ekCa), 1, 'USAGE');

    // Another TPM's quote is valid, but not by an enrolled AK.
    const otherTpm = await other.open();
    const otherDoc = path.join(tmp.dir, 'other-quote.json');
    try {
      writeFileSync(otherDoc, JSON.stringify(await attest(otherTpm, nonce, [0, 7])));
    } finally {
      await otherTpm.close();
    }
    const notEnrolled = await run('tpm', 'verify', otherDoc, '--nonce', nonce.toString('hex'), '--enrolled');
    refused(notEnrolled, 2, 'ATTESTATION_INVALID');
    expect(notEnrolled.json.error.message).toMatch(/is not enrolled/);

    // Enrolling again replaces the record.
    const again = await run('tpm', 'enroll', '--peer', addr, '--tpm-ca', ekCa, '--label', 'seller, renamed');
    expect(again.json).toMatchObject({ enrolled: true, replaced: true, label: 'seller, renamed' });
    expect((await run('tpm', 'trust', 'list')).json.identities).toHaveLength(1);
  });

  test('refusals: an untrusted CA, a peer without a TPM, a wrong peer key, no peer; the trust store is untouched', async () => {
    const before = snapshot(buyer);
    const { addr, key } = await serve(nodeTpm);
    const untrusted = await run('tpm', 'enroll', '--peer', addr, '--tpm-ca', other.ekCa!);
    refused(untrusted, 2, 'ATTESTATION_INVALID');
    expect(untrusted.json.error.message).toMatch(/EK certificate is issued by "CN=swtpm-localca", but not by the trusted certificate of that name/);

    const noTpm = await serve(null);
    const r = await run('tpm', 'enroll', '--peer', noTpm.addr, '--tpm-ca', ekCa);
    refused(r, 2, 'ATTESTATION_INVALID');
    expect(r.json.error.details).toEqual({ peerCode: 'TPM_UNAVAILABLE' });

    refused(await run('tpm', 'enroll', '--peer', addr, '--tpm-ca', ekCa, '--peer-key', key.replace(/^./, (ch) => (ch === '0' ? '1' : '0'))), 2, 'PEER_KEY_MISMATCH');
    refused(await run('tpm', 'enroll', '--peer', `127.0.0.1:${await freePort()}`, '--tpm-ca', ekCa), 4, 'PEER_UNREACHABLE');
    expect(snapshot(buyer)).toEqual(before);
  });

  test('usage errors: no --tpm-ca, no peer, a file without certificates, a bad label', async () => {
    const { addr } = await serve(nodeTpm);
    refused(await run('tpm', 'enroll', '--peer', addr), 1, 'USAGE');
    refused(await run('tpm', 'enroll', '--tpm-ca', ekCa), 1, 'USAGE');
    const notPem = path.join(tmp.dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    refused(await run('tpm', 'enroll', '--peer', addr, '--tpm-ca', notPem), 2, 'INVALID_FILE');
    refused(await run('tpm', 'enroll', '--peer', addr, '--tpm-ca', path.join(tmp.dir, 'missing.pem')), 2, 'INVALID_FILE');
    refused(await run('tpm', 'enroll', '--peer', addr, '--tpm-ca', ekCa, '--label', 'two\nlines'), 1, 'USAGE');
  });

  test('trust remove: the AK is no longer trusted; an unknown AK name is a usage error', async () => {
    const akName = (await nodeTpm.akPublic()).name.toString('hex');
    const r = await run('tpm', 'trust', 'remove', akName);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ removed: true, akName, label: 'seller, renamed' });
    expect((await run('tpm', 'trust', 'list')).json).toEqual({ identities: [] });
    refused(await run('tpm', 'trust', 'remove', akName), 1, 'USAGE');
    refused(await run('tpm', 'trust', 'remove', 'xyz'), 1, 'USAGE');
    // A datadir that never enrolled anything lists nothing, and creates nothing.
    const fresh = path.join(tmp.dir, 'fresh');
    expect((await swarmpay(['--datadir', fresh, 'tpm', 'trust', 'list'])).json).toEqual({ identities: [] });
    expect(existsSync(fresh)).toBe(false);
  });
});
