/**
 * Escrow as users run it: a seller and a buyer datadir on one machine, a real btcd, a real
 * swtpm for attested offers, the seller's `escrow serve` a real process. The file flow, the
 * online flow over TCP and over --peer-cmd, the refund path and the cheating seller, end to
 * end; each refusal with its exit code and nothing stored changed.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { ROOT, snapshot, swarmpay, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { startServer, stopChild } from './helpers/server.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { passphraseUnlocker } from '../src/keystore/keystore.js';
import { unlockWallet } from '../src/wallet/wallet.js';
import { ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { draftOffer, signOffer } from '../src/escrow/offer.js';
import { sha256 } from '../src/bitcoin/htlc.js';
import { nextEscrowKey, saveEscrow, writeEscrowFile } from '../src/escrow/store.js';
import { enrollTpm } from './helpers/enroll.js';
import type { EnrollResult } from '../src/tpm/enroll.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');
const PASSPHRASE = 'a good long passphrase';


describe('escrow CLI: a seller and a buyer datadir, a real btcd and swtpm', () => {
  let tmp: ReturnType<typeof tempDir>;
  let tpm: TestTpm;
  let buyer: string;
  let seller: string;
  let pass: string;
  let chainArgs: string[];
  const b = (...args: string[]) => swarmpay(['--datadir', buyer, '--tpm', 'none', ...args, ...withPass(args)]);
  const s = (...args: string[]) => swarmpay(['--datadir', seller, '--tpm', tpm.arg, ...chainArgs, ...args, ...withPass(args)]);
  // Every command but node and completion opens the wallet.
  const withPass = (args: string[]) => (['node', 'completion'].includes(args[0]!) || args.includes('address') || args.includes('balance') ? [] : ['--passphrase-file', pass]);
  const refused = (r: CliResult, exit: number, code: string) => expect({ exit: r.code, code: r.json?.error?.code, message: r.json?.error?.message }).toEqual({ exit, code, message: expect.any(String) });
  const mine = (n = 1) => b('node', 'mine', String(n));
  const confirmed = async (run: typeof b) => BigInt((await run('wallet', 'balance')).json.confirmed);
  const file = (name: string) => path.join(tmp.dir, name);

  beforeAll(async () => {
    tmp = tempDir();
    tpm = await startTestTpm();
    buyer = path.join(tmp.dir, 'buyer');
    seller = path.join(tmp.dir, 'seller');
    pass = file('pass');
    writeFileSync(pass, PASSPHRASE);
    const started = await b('node', 'start');
    expect(started.code).toBe(0);
    chainArgs = ['--rpc-url', started.json.rpcUrl, '--rpc-cookie', started.json.rpcCookie];
    expect((await b('wallet', 'create', '--mnemonic-file', file('buyer.words'))).code).toBe(0);
    expect((await s('wallet', 'create', '--mnemonic-file', file('seller.words'))).code).toBe(0);
    for (let i = 0; i < 2; i++) expect((await b('node', 'mine', '1', '--to', (await b('wallet', 'address')).json.address)).code).toBe(0);
  });
  afterAll(async () => {
    await b('node', 'stop');
    await tpm?.stop();
    tmp?.remove();
  });

  function item(name: string, bytes = 20_000): string {
    const f = file(name);
    writeFileSync(f, randomBytes(bytes));
    return f;
  }

  async function offer(name: string, ...extra: string[]): Promise<{ id: string; offerFile: string }> {
    const offerFile = file(`${name}.offer.json`);
    const r = await s('escrow', 'offer', '--item', item(name), '--price', '50000', '--out', offerFile, ...extra);
    expect(r.code).toBe(0);
    return { id: r.json.id, offerFile };
  }

  /** Runs the CLI on a pseudo-terminal (util-linux `script`), answering `answer` to the first confirmation. */
  function onTerminal(args: string[], answer: string): Promise<{ code: number | null; out: string }> {
    const cmd = [BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return new Promise((resolve) => {
      const child = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let answered = false;
      const seen = (d: Buffer) => {
        out += d.toString();
        if (!answered && /Pay \d+ sats/.test(out)) {
          answered = true;
          child.stdin!.write(answer);
        }
      };
      child.stdout!.on('data', seen);
      child.stderr!.on('data', seen);
      child.on('exit', (code) => resolve({ code, out }));
    });
  }

  test('file flow: offer, accept, claim, recover; the node pays the seller the price minus the claim fee and the item comes back byte for byte', async () => {
    const { id, offerFile } = await offer('photo.bin');
    const sellerBefore = await confirmed(s);
    const accepted = await b('escrow', 'accept', offerFile, '--max-price', '50000', '--out', file('photo.acceptance.json'));
    expect(accepted.code).toBe(0);
    expect(accepted.json).toMatchObject({ id, price: 50000, attested: false, sellerTook: false });

    // Not yet confirmed: the seller refuses to claim, and remembers the acceptance only once.
    const early = await s('escrow', 'claim', id, '--acceptance', file('photo.acceptance.json'));
    refused(early, 2, 'ESCROW_STATE');
    expect(early.json.error.hint).toContain('--wait');
    await mine(1);
    const claimed = await s('escrow', 'claim', id, '--acceptance', file('photo.acceptance.json'));
    expect(claimed.code).toBe(0);
    // Run again (after a crash, say): the same claim, no second spend.
    const again = await s('escrow', 'claim', id);
    expect([again.code, again.json.claimTxid, again.json.fee]).toEqual([0, claimed.json.claimTxid, null]);
    await mine(1);
    expect(await confirmed(s)).toBe(sellerBefore + 50_000n - BigInt(claimed.json.fee));

    const got = await b('escrow', 'claim', id, '--out', file('photo.got'));
    expect(got.json).toMatchObject({ role: 'buyer', claimTxid: claimed.json.claimTxid, itemMatches: true });
    expect(readFileSync(file('photo.got')).equals(readFileSync(file('photo.bin')))).toBe(true);
    for (const run of [b, s]) expect((await run('escrow', 'show', id)).json).toMatchObject({ id, fundingTxid: accepted.json.fundingTxid, claimTxid: claimed.json.claimTxid });
    expect((await b('escrow', 'show', id)).json.status).toBe('completed');
    expect((await s('escrow', 'show', id)).json.status).toBe('claimed');
  });

  test('online flow over TCP: the buyer fetches the offer from `escrow serve`, funds, and the serving seller claims by itself', async () => {
    const { id } = await offer('song.bin');
    const server = await serve();
    try {
      // Garbage from a stranger first: refused, and the server goes on serving.
      await new Promise<void>((resolve) => {
        const sock = connect(server.port, '127.0.0.1', () => sock.end(randomBytes(100)));
        sock.on('close', () => resolve());
        sock.on('error', () => undefined);
      });
      const accepted = await b('escrow', 'accept', '--max-price', '100000000', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key);
      expect(accepted.code).toBe(0);
      expect(accepted.json).toMatchObject({ id, sellerTook: true });
      await mine(1);
      const got = await b('escrow', 'claim', id, '--out', file('song.got'), '--wait');
      expect(got.code).toBe(0);
      expect(readFileSync(file('song.got')).equals(readFileSync(file('song.bin')))).toBe(true);
      await mine(1);
      expect((await s('escrow', 'show', id)).json).toMatchObject({ status: 'claimed', claimTxid: got.json.claimTxid });
    } finally {
      await stopChild(server.child);
    }
  });

  test('online flow over --peer-cmd (as over ssh): the same on-chain result; the seller claims with `escrow claim`', async () => {
    const { id } = await offer('map.bin');
    const cmd = [BIN, '--datadir', seller, '--tpm', 'none', ...chainArgs, 'escrow', 'serve', '--stdio', '--passphrase-file', pass].map((a) => `'${a}'`).join(' ');
    const accepted = await b('escrow', 'accept', '--max-price', '100000000', id, '--peer-cmd', cmd);
    expect([accepted.code, accepted.json.sellerTook]).toEqual([0, true]);
    // The seller's server ended with the link: the buyer is told exactly what the seller must run.
    expect(accepted.json.sellerMustRun).toBe(`swarmpay escrow claim ${id}`);
    await mine(1);
    const claimed = await s('escrow', 'claim', id);
    expect(claimed.code).toBe(0);
    const got = await b('escrow', 'claim', id, '--out', file('map.got'));
    expect([got.code, got.json.claimTxid]).toEqual([0, claimed.json.claimTxid]);
    expect(readFileSync(file('map.got')).equals(readFileSync(file('map.bin')))).toBe(true);
  });

  test('refund: refused by the node before the timeout (the CLI says from which height), confirmed after it', async () => {
    const { id, offerFile } = await offer('late.bin', '--timeout', '10');
    const before = await confirmed(b);
    const accepted = await b('escrow', 'accept', '--max-price', '100000000', offerFile, '--out', file('late.acceptance.json'));
    expect(accepted.code).toBe(0);
    // The seller takes the acceptance (its claim waits for a confirmation that, here, never comes in time).
    refused(await s('escrow', 'claim', id, '--acceptance', file('late.acceptance.json')), 2, 'ESCROW_STATE');
    await mine(1);
    const timeout = accepted.json.timeout as number;
    const unchanged = snapshot(buyer);
    const early = await b('escrow', 'refund', id);
    refused(early, 2, 'ESCROW_TOO_EARLY');
    expect(early.json.error.message).toMatch(/not finalized/); // the node's own reason
    expect(early.json.error.hint).toContain(`height ${timeout}`);
    expect(snapshot(buyer)).toEqual(unchanged);
    // Asking for the item meanwhile says the seller has not claimed, and when a refund is possible.
    const none = await b('escrow', 'claim', id, '--out', file('late.got'));
    refused(none, 2, 'ESCROW_STATE');
    expect(none.json.error.hint).toContain(`height ${timeout}`);

    const tip = (await b('node', 'status')).json.height as number;
    await mine(timeout - tip);
    const refund = await b('escrow', 'refund', id);
    expect(refund.code).toBe(0);
    await mine(1);
    expect(await confirmed(b)).toBe(before - BigInt(accepted.json.fee) - BigInt(refund.json.fee));
    // The seller sees the refund, and its key was never revealed.
    const late = await s('escrow', 'claim', id, '--force');
    refused(late, 2, 'ESCROW_STATE');
    expect(late.json.error.message).toContain(`refunded escrow ${id} in ${refund.json.refundTxid}`);
    expect((await s('escrow', 'show', id)).json).toMatchObject({ status: 'refunded', refundTxid: refund.json.refundTxid, claimTxid: null });
  });

  test('a seller whose key decrypts to another item is reported as cheating, with the evidence kept', async () => {
    // A dishonest seller's own software: the offer names item A, the ciphertext holds item B.
    const honest = readFileSync(item('a.bin'));
    const other = randomBytes(1000);
    const sellerNet = path.join(seller, 'regtest');
    const { session, seed } = await unlockWallet(sellerNet, 'regtest', passphraseUnlocker(PASSPHRASE), { checkpoint: false });
    const keyIndex = nextEscrowKey(session);
    const key = contractKey(seed, 'regtest', ESCROW_CHAIN, keyIndex);
    const id = randomBytes(8).toString('hex');
    const draft = draftOffer({ id, network: 'regtest', name: 'a.bin', item: other, price: 40_000n, timeout: { min: 144, max: 4032 }, confirmations: 1, seller: key.pub, expires: new Date(Date.now() + 3_600_000) });
    draft.body.item = { name: 'a.bin', size: honest.length, sha256: sha256(honest).toString('hex') };
    const cheat = signOffer(draft.body, key.priv);
    writeEscrowFile(sellerNet, `${id}.enc`, draft.ciphertext);
    await saveEscrow(session, { id, role: 'seller', offer: cheat, keyIndex, key: draft.key.toString('hex'), status: 'offered', created: new Date().toISOString() });
    writeFileSync(file('cheat.json'), JSON.stringify(cheat));
    writeFileSync(file('cheat.json.enc'), draft.ciphertext);

    expect((await b('escrow', 'accept', '--max-price', '100000000', file('cheat.json'), '--out', file('cheat.acceptance.json'))).code).toBe(0);
    await mine(1);
    const claimed = await s('escrow', 'claim', id, '--acceptance', file('cheat.acceptance.json'));
    expect(claimed.code).toBe(0);
    const got = await b('escrow', 'claim', id, '--out', file('cheat.got'));
    refused(got, 2, 'SELLER_CHEATED');
    expect(existsSync(file('cheat.got'))).toBe(false);
    const evidence = JSON.parse(readFileSync(got.json.error.details?.evidence ?? path.join(buyer, 'regtest', 'escrow', `${id}.evidence.json`), 'utf8'));
    expect(evidence).toMatchObject({ claimTxid: claimed.json.claimTxid, key: draft.key.toString('hex'), decryptedSha256: sha256(other).toString('hex') });
    expect((await b('escrow', 'show', id)).json.status).toBe('cheated');
  });

  test('attested offers: the buyer checks the TPM quote (its AK pinned with --ak) against its golden PCRs; a wrong allow list or a quote moved to another offer is refused', async () => {
    const { offerFile } = await offer('fw.bin', '--attest', '--pcrs', '0,7');
    const doc = JSON.parse(readFileSync(offerFile, 'utf8'));
    expect(doc.attestation.pcrs.values).toHaveProperty('7');
    const golden = file('golden.json');
    writeFileSync(golden, JSON.stringify(doc.attestation.pcrs.values));
    const wrong = file('wrong.json');
    writeFileSync(wrong, JSON.stringify({ 7: 'ab'.repeat(32) }));
    const unchanged = snapshot(buyer);
    refused(await b('escrow', 'accept', '--max-price', '100000000', offerFile, '--require-attestation', '--expect-pcrs', wrong), 2, 'ATTESTATION_INVALID');

    // Another offer's quote on this one: its nonce is the other offer's digest.
    const other = await offer('fw2.bin');
    const moved = { ...JSON.parse(readFileSync(other.offerFile, 'utf8')), attestation: doc.attestation };
    writeFileSync(file('moved.json'), JSON.stringify(moved));
    writeFileSync(file('moved.json.enc'), readFileSync(`${other.offerFile}.enc`));
    const r = await b('escrow', 'accept', '--max-price', '100000000', file('moved.json'));
    refused(r, 2, 'ATTESTATION_INVALID');
    expect(r.json.error.message).toContain('another nonce');
    refused(await b('escrow', 'accept', '--max-price', '100000000', other.offerFile, '--require-attestation'), 2, 'ATTESTATION_INVALID');
    // Expecting PCR values asks for a quote: an offer without one is refused too.
    refused(await b('escrow', 'accept', '--max-price', '100000000', other.offerFile, '--expect-pcrs', golden), 2, 'ATTESTATION_INVALID');
    expect(snapshot(buyer)).toEqual(unchanged);

    // The seller's AK, pinned: someone (the buyer) vouches for it.
    const ak = file('seller-ak.pem');
    writeFileSync(ak, doc.attestation.akPublic);
    const ok = await b('escrow', 'accept', '--max-price', '100000000', offerFile, '--require-attestation', '--expect-pcrs', golden, '--ak', ak);
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({ attested: true, pcrs: doc.attestation.pcrs.values, akName: doc.attestation.akName, akPinned: true, akVouched: true, vouchedBy: null, quoteFresh: false });
    expect(ok.stderr).not.toMatch(/nobody vouches/);
    // From a file, the quote is the offer's own (nonce = the offer digest): said plainly that it can be replayed.
    expect(ok.stderr).toContain('warning: the TPM quote of offer files is the one made with the offer (its nonce is the offer digest): anyone holding the offer can replay it');
  });

  test("the buyer's trust store: an AK nobody vouches for is refused under --require-attestation (nothing paid) and warned about otherwise; once the buyer enrolls the seller's TPM, its offers pass --enrolled", async () => {
    const first = await offer('cal.bin', '--attest', '--pcrs', '0,7');
    const attestation = JSON.parse(readFileSync(first.offerFile, 'utf8')).attestation;
    const akName = attestation.akName as string;
    const golden = file('cal-golden.json');
    writeFileSync(golden, JSON.stringify(attestation.pcrs.values));
    const unchanged = snapshot(buyer);
    const balance = await confirmed(b);
    for (const [flags, why] of [[['--require-attestation'], 'which nobody vouches for'], [['--expect-pcrs', golden], 'which nobody vouches for'], [['--enrolled'], 'which is not enrolled']] as const) {
      const r = await b('escrow', 'accept', '--max-price', '100000000', first.offerFile, ...flags);
      refused(r, 2, 'ATTESTATION_INVALID');
      expect(r.json.error.message).toContain(`the offer's attestation is by TPM key ${akName}, ${why}`);
      expect(r.json.error.hint).toMatch(/`swarmpay tpm enroll --peer HOST:PORT --tpm-ca FILE`.*--ak.*nothing was paid/);
    }
    expect(snapshot(buyer)).toEqual(unchanged);
    expect(await confirmed(b)).toBe(balance);

    // Without --require-attestation: asked on a terminal, the summary says nobody vouches, and the warning is loud.
    const asked = await onTerminal(['--datadir', buyer, '--tpm', 'none', 'escrow', 'accept', first.offerFile, '--passphrase-file', pass], 'n\r');
    expect(asked.out).toContain(`attested: yes, TPM key ${akName} (nobody vouches for this key: not enrolled, not pinned); the offer's own quote (its nonce is the offer digest): it can be replayed`);
    expect(asked.out).toMatch(/warning: the TPM quote of offer files is the one made with the offer/);
    expect(asked.out).toMatch(new RegExp(`warning: nobody vouches for the TPM key ${akName} that attested this offer: it is neither enrolled`));
    expect(asked.out).toMatch(/cancelled; nothing was paid/);
    expect(snapshot(buyer)).toEqual(unchanged);
    // Without a terminal (--max-price): accepted, with the warning on stderr and akVouched false in the result.
    const accepted = await b('escrow', 'accept', '--max-price', '100000000', first.offerFile);
    expect(accepted.code).toBe(0);
    expect(accepted.json).toMatchObject({ attested: true, akName, akPinned: false, akVouched: false, vouchedBy: null });
    expect(accepted.stderr).toContain(`warning: nobody vouches for the TPM key ${akName} that attested this offer: it is neither enrolled (\`swarmpay tpm enroll\`) nor pinned with --ak`);
    await mine(1);

    // The buyer enrolls the seller's TPM: its EK certificate chains to the swtpm's local CA, and credential activation binds the AK to it.
    const sellerTpm = await tpm.open();
    let enrolled: EnrollResult;
    try {
      enrolled = await enrollTpm(sellerTpm, tpm.ekCa!, path.join(buyer, 'regtest'), 'seller device');
    } finally {
      await sellerTpm.close();
    }
    expect(enrolled.identity.akName).toBe(akName);
    expect((await swarmpay(['--datadir', buyer, 'tpm', 'trust', 'list'])).json.identities).toMatchObject([{ akName, label: 'seller device' }]);

    const second = await offer('cal2.bin', '--attest', '--pcrs', '0,7');
    const ok = await b('escrow', 'accept', '--max-price', '100000000', second.offerFile, '--enrolled', '--expect-pcrs', golden);
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({
      attested: true, akName, akPinned: true, akVouched: true,
      vouchedBy: { akName, label: 'seller device', ek: { kind: 'rsa-2048', issuer: 'CN=swtpm-localca' }, ca: { subject: 'CN=swtpm-localca-rootca' } },
    });
    expect(ok.stderr).not.toMatch(/nobody vouches/);
    await mine(1);
    // Enrolled, it is vouched for without --enrolled too: the trust store is always consulted.
    const third = await offer('cal3.bin', '--attest', '--pcrs', '0,7');
    const plain = await b('escrow', 'accept', '--max-price', '100000000', third.offerFile, '--require-attestation');
    expect(plain.json).toMatchObject({ akVouched: true, vouchedBy: { label: 'seller device' } });
    expect(plain.stderr).not.toMatch(/nobody vouches/);
    await mine(1);
  });

  test('bad input is refused with its exit code and changes nothing', async () => {
    const { id, offerFile } = await offer('doc.bin');
    const text = readFileSync(offerFile, 'utf8');
    const variants: [string, string | Buffer, string[], number, string][] = [
      ['garbage.json', 'not json {', [], 2, 'INVALID_FILE'],
      ['shape.json', JSON.stringify({ format: 'swarmpay-offer', version: 1 }), [], 2, 'OFFER_INVALID'],
      ['tampered.json', text.replace('"price": "50000"', '"price": "5000"'), [], 2, 'OFFER_INVALID'],
      ['pricey.json', text, ['--max-price', '49999'], 2, 'PRICE_ABOVE_LIMIT'],
      ['ct.json', text, ['--ciphertext', offerFile], 2, 'CIPHERTEXT_MISMATCH'],
      ['range.json', text, ['--timeout', '5'], 1, 'USAGE'],
    ];
    const unchanged = snapshot(buyer);
    for (const [name, body, flags, exit, code] of variants) {
      writeFileSync(file(name), body);
      writeFileSync(file(`${name}.enc`), readFileSync(`${offerFile}.enc`));
      const r = await b('escrow', 'accept', '--max-price', '100000000', file(name), ...flags);
      expect([name, r.code, r.json?.error?.code]).toEqual([name, exit, code]);
    }
    refused(await b('escrow', 'claim', 'ffffffffffffffff', '--out', file('x')), 3, 'ESCROW_NOT_FOUND');
    refused(await b('escrow', 'refund', 'ffffffffffffffff'), 3, 'ESCROW_NOT_FOUND');
    expect(snapshot(buyer)).toEqual(unchanged);

    // The seller: a malformed acceptance, and an acceptance for another offer.
    const sellerState = snapshot(seller);
    writeFileSync(file('bad.acceptance.json'), JSON.stringify({ format: 'swarmpay-acceptance', version: 1, offer: id }));
    refused(await s('escrow', 'claim', id, '--acceptance', file('bad.acceptance.json')), 2, 'INVALID_FILE');
    refused(await s('escrow', 'claim', id), 2, 'ESCROW_STATE');
    expect(snapshot(seller)).toEqual(sellerState);
  });

  test('the seller refuses to claim within the margin of the timeout unless --force', async () => {
    const { id, offerFile } = await offer('edge.bin', '--timeout', '12');
    const accepted = await b('escrow', 'accept', '--max-price', '100000000', offerFile, '--out', file('edge.acceptance.json'));
    expect((await s('escrow', 'claim', id, '--acceptance', file('edge.acceptance.json'))).json.error.code).toBe('ESCROW_STATE'); // 0 confirmations; acceptance taken
    const tip = (await b('node', 'status')).json.height as number;
    await mine(accepted.json.timeout - tip - 3); // 3 blocks left, inside the default margin of 6
    const unchanged = snapshot(seller);
    const r = await s('escrow', 'claim', id);
    refused(r, 2, 'ESCROW_TOO_LATE');
    expect(r.json.error.hint).toContain('--force');
    expect(snapshot(seller)).toEqual(unchanged);
    const forced = await s('escrow', 'claim', id, '--force');
    expect(forced.code).toBe(0);
    expect(forced.json.claimTxid).toMatch(/^[0-9a-f]{64}$/);
  });

  const serve = (...extra: string[]) => startServer(['--datadir', seller, '--tpm', 'none', ...chainArgs, 'escrow', 'serve', '--listen', '127.0.0.1:0', '--poll', '1', '--passphrase-file', pass, ...extra]);

  test("online, an attested offer: `escrow serve` quotes its TPM afresh for the buyer's nonce, and the buyer verifies that quote; no replay warning", async () => {
    const { id, offerFile } = await offer('live.bin', '--attest', '--pcrs', '0,7');
    const ak = file('live-ak.pem');
    writeFileSync(ak, JSON.parse(readFileSync(offerFile, 'utf8')).attestation.akPublic);
    const server = await startServer(['--datadir', seller, '--tpm', tpm.arg, ...chainArgs, 'escrow', 'serve', '--listen', '127.0.0.1:0', '--poll', '1', '--passphrase-file', pass]);
    let r: CliResult;
    try {
      r = await b('escrow', 'accept', '--max-price', '100000000', id, '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--require-attestation', '--ak', ak);
    } finally {
      await stopChild(server.child);
    }
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ id, attested: true, akPinned: true, quoteFresh: true, sellerTook: true });
    expect(r.stderr).not.toMatch(/can replay it/);
    await mine(1);
  });

  test('online: a seller that refuses the acceptance leaves the buyer funded and told how to go on; accepting again hands it over and does not pay twice', async () => {
    const { id } = await offer('retry.bin');
    const before = await confirmed(b);
    const strict = await serve('--margin', '1000'); // every timeout is too near for it
    let first: CliResult;
    try {
      first = await b('escrow', 'accept', '--max-price', '100000000', id, '--peer', `127.0.0.1:${strict.port}`);
    } finally {
      await stopChild(strict.child);
    }
    refused(first, 2, 'ESCROW_STATE');
    expect(first.json.error.message).toContain(`escrow ${id} is funded`);
    expect(first.json.error.message).toContain('ESCROW_TOO_LATE');
    expect(first.json.error.hint).toContain('run the same command again');
    expect((await s('escrow', 'show', id)).json.status).toBe('offered');

    const server = await serve();
    try {
      const again = await b('escrow', 'accept', '--max-price', '100000000', id, '--peer', `127.0.0.1:${server.port}`);
      expect(again.json).toMatchObject({ id, fee: null, sellerTook: true, sellerKeyLearned: true });
      // No --peer-key: the key that answered is trusted, and the buyer is told so.
      expect(again.stderr).toMatch(/the seller's link key [0-9a-f]{64} was learned on first use: nothing proves this is the seller you meant; pass --peer-key to pin it/);
      await mine(1);
      const got = await b('escrow', 'claim', id, '--out', file('retry.got'), '--wait');
      expect(got.code).toBe(0);
      expect(readFileSync(file('retry.got')).equals(readFileSync(file('retry.bin')))).toBe(true);
      await mine(1);
      // One funding only: the buyer paid the price and one funding fee.
      const funding = await b('escrow', 'show', id);
      expect(funding.json.fundingTxid).toBe(again.json.fundingTxid);
      expect(await confirmed(b)).toBeGreaterThanOrEqual(before - 50_000n - 1_000n);
      expect(await confirmed(b)).toBeLessThan(before - 50_000n);
    } finally {
      await stopChild(server.child);
    }
  });

  test('consent: without a terminal --max-price is required; a price above it, or an offer wanting a longer timeout than the default, is refused; nothing is paid', async () => {
    const { offerFile } = await offer('consent.bin');
    const before = snapshot(buyer);
    const balance = await confirmed(b);
    const noCap = await swarmpay(['--datadir', buyer, '--tpm', 'none', 'escrow', 'accept', offerFile, '--passphrase-file', pass]);
    refused(noCap, 1, 'USAGE');
    expect(noCap.json.error.message).toMatch(/needs --max-price when it cannot ask/);
    refused(await b('escrow', 'accept', offerFile, '--max-price', '49999'), 2, 'PRICE_ABOVE_LIMIT');
    const { offerFile: slow } = await offer('slow.bin', '--timeout', '300', '--max-timeout', '600');
    const long = await b('escrow', 'accept', slow, '--max-price', '50000');
    refused(long, 1, 'USAGE');
    expect(long.json.error.message).toMatch(/at least 300 blocks/);
    expect(long.json.error.hint).toMatch(/--timeout 300/);
    expect(snapshot(buyer)).toEqual(before);
    expect(await confirmed(b)).toBe(balance);
    // Named, the longer timeout is taken.
    const ok = await b('escrow', 'accept', slow, '--max-price', '50000', '--timeout', '300');
    expect(ok.code).toBe(0);
    expect(ok.json.timeout - Number((await b('node', 'status')).json.height)).toBe(300);
    await mine(1); // its change confirmed, for the tests after
  });

  test('consent on a terminal: price, fee, timeout in blocks and time, seller and attestation are shown and asked; "n" pays nothing, "y" pays', async () => {
    const { offerFile } = await offer('asked.bin');
    const before = snapshot(buyer);
    const args = ['--datadir', buyer, '--tpm', 'none', 'escrow', 'accept', offerFile, '--passphrase-file', pass];
    const no = await onTerminal(args, 'n\r');
    expect(no.out).toMatch(/price: +50000 sats/);
    expect(no.out).toMatch(/fee: +\d+ sats \(2 sat\/vB\)/);
    expect(no.out).toMatch(/timeout: +144 blocks, height \d+ \(about 24 hours\)/);
    expect(no.out).toMatch(/seller: +0[23][0-9a-f]{64}/);
    expect(no.out).toMatch(/attested: no/);
    expect(no.out).toMatch(/cancelled; nothing was paid/);
    expect(no.code).not.toBe(0);
    expect(snapshot(buyer)).toEqual(before);
    const yes = await onTerminal(args, 'y\r');
    expect(yes.out).toMatch(/funded 50000 sats/);
    expect(yes.code).toBe(0);
    await mine(1);
  });

  test('escrow serve serves an offer made after it started (by another process)', async () => {
    const server = await startServer(['--datadir', seller, '--tpm', 'none', ...chainArgs, 'escrow', 'serve', '--listen', '127.0.0.1:0', '--poll', '1', '--passphrase-file', pass]);
    try {
      const { id } = await offer('later.bin');
      const accepted = await b('escrow', 'accept', id, '--max-price', '50000', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key);
      expect(accepted.code).toBe(0);
      expect(accepted.json).toMatchObject({ id, sellerTook: true });
      await mine(1);
    } finally {
      await stopChild(server.child);
    }
  });

  test('the files `escrow offer` names without --out work as printed with `escrow accept`', async () => {
    const made = await s('escrow', 'offer', '--item', item('printed.bin'), '--price', '50000');
    expect(made.code).toBe(0);
    expect(made.json.ciphertext).toBe(path.join(path.dirname(made.json.offer), `${made.json.id}.enc`));
    const accepted = await b('escrow', 'accept', made.json.offer, '--max-price', '50000');
    expect(accepted.code).toBe(0);
    expect(accepted.json.id).toBe(made.json.id);
    await mine(1);
  });
});
