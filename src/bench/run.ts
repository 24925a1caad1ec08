/**
 * `npm run bench`: payment-channel throughput on this machine, with the limit the
 * secp256k1 library sets measured in the same run. The payee is a real `swarmpay channel
 * serve` in its own process (its own core), the payer is this process; both keep durable
 * state; everything runs against a fresh regtest btcd. Prints one JSON document and
 * writes it to bench-results/bench.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StateHasher, signState, verifyState } from '../bitcoin/channel.js';
import { BtcdChain } from '../chain/rpc-chain.js';
import { embeddedRpc, nodeDir, startNode, stopNode } from '../chain/embedded-node.js';
import { PayerSession, openChannel } from '../channel/payer.js';
import { peerStaticKey } from '../peer/keys.js';
import { CHANNEL_CHAIN, contractKey } from '../wallet/hd.js';
import { passphraseUnlocker } from '../keystore/keystore.js';
import { SCRYPT_N_MIN } from '../keystore/crypto.js';
import { connectTcp } from '../peer/transports.js';
import { FAUCET_ADDRESS, faucetPay } from '../wallet/faucet.js';
import { newMnemonic } from '../wallet/mnemonic.js';
import { createWallet, receiveAddress, unlockWallet, type WalletContext } from '../wallet/wallet.js';

const BIN = fileURLToPath(new URL('../../bin/swarmpay', import.meta.url));
const PASS = 'bench passphrase, not a secret';

function micros(n: number, f: () => void): number {
  for (let i = 0; i < Math.min(200, n); i++) f();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

/** sign, verify and sighash cost: one core signs, the other verifies. */
function measureLimit() {
  const signer = contractKey(randomBytes(64), 'regtest', CHANNEL_CHAIN, 0);
  const p2wpkh = (b: number) => Buffer.concat([Buffer.from([0, 20]), Buffer.alloc(20, b)]);
  const terms = { payerPubkey: signer.pub, payeePubkey: contractKey(randomBytes(64), 'regtest', CHANNEL_CHAIN, 0).pub, expiry: 1000, capacity: 100_000_000n, closeFee: 500n, payeeScript: p2wpkh(1), payerScript: p2wpkh(2) };
  const hasher = new StateHasher(terms, { txid: '11'.repeat(32), vout: 0 });
  let c = 1000n;
  const sighash_us = micros(5000, () => hasher.sighash(c++));
  const h = hasher.sighash(5000n);
  const sig = signState(h, signer.priv);
  const sign_us = micros(3000, () => signState(h, signer.priv));
  const verify_us = micros(3000, () => verifyState(h, signer.pub, sig));
  return { sign_us, verify_us, sighash_us, payments_per_sec: 1e6 / Math.max(sign_us, verify_us + sighash_us) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Starts the payee as `swarmpay channel serve` and waits for its listening line. */
async function startPayee(datadir: string, rpcUrl: string, cookie: string, passFile: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BIN, '--datadir', datadir, '--rpc-url', rpcUrl, '--rpc-cookie', cookie, '--tpm', 'none', '--json', 'channel', 'serve', '--listen', '127.0.0.1:0', '--passphrase-file', passFile, '--max-capacity', '2100000000000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.resume();
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`channel serve exited with ${code}`)));
  });
  return { child, port: Number((JSON.parse(first) as { listening: string }).listening.split(':').pop()) };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const limit = measureLimit();
  const work = mkdtempSync(path.join(tmpdir(), 'swarmpay-bench-'));
  const dirs = { payer: path.join(work, 'payer'), payee: path.join(work, 'payee') };
  const nd = nodeDir(path.join(dirs.payer, 'regtest'));
  let payeeProc: ChildProcess | undefined;
  try {
    const { state } = await startNode(nd, 'btcd', FAUCET_ADDRESS);
    const rpc = embeddedRpc(nd).client;
    const chain = new BtcdChain('regtest', rpc);
    for (const d of Object.values(dirs)) createWallet(path.join(d, 'regtest'), 'regtest', PASS, newMnemonic(), { N: SCRYPT_N_MIN, r: 8, p: 1 });
    const passFile = path.join(work, 'pass');
    writeFileSync(passFile, PASS);
    const payer = await unlockWallet(path.join(dirs.payer, 'regtest'), 'regtest', passphraseUnlocker(PASS), { checkpoint: false });
    const pc: WalletContext = { session: payer.session, seed: payer.seed, network: 'regtest', networkDir: path.join(dirs.payer, 'regtest'), chain };
    // One coin per channel: channels are funded from confirmed coins only.
    const multi = 100;
    for (let i = 0; i < multi + 1; i++) await faucetPay(chain, (await receiveAddress(chain, pc.networkDir, 'regtest')).address, 1_000_000n + BigInt(i)).then(() => (i % 20 === 19 ? chain.mine(1) : undefined));
    await chain.mine(1);

    const payee = await startPayee(dirs.payee, state.rpcUrl, state.cookieFile, passFile);
    payeeProc = payee.child;
    const connect = () => connectTcp('127.0.0.1', payee.port, peerStaticKey(payer.seed));
    const peer = { kind: 'tcp' as const, host: '127.0.0.1', port: payee.port };

    // Open → close CPU time of one channel.
    const cpu0 = process.cpuUsage();
    let link = await connect();
    const opened = await openChannel(pc, link, peer, { capacity: 900_000n, expiryBlocks: 144, feeRate: 2n });
    await link.close();
    await chain.mine(1);
    link = await connect();
    const single = await PayerSession.start(pc, link, opened.rec.id);
    const cpuOpen = process.cpuUsage(cpu0);

    // One channel, as fast as it goes.
    const N = 20_000;
    const r1 = await single.pay(Array.from({ length: N }, () => ({ sats: 1n, pid: null })));
    const singleRate = N / r1.seconds;

    // Latency at half the limit: paced sends, each payment's time to its acknowledgement.
    const paced: number[] = [];
    const rate = limit.payments_per_sec / 2;
    await single.pay(Array.from({ length: 5_000 }, () => ({ sats: 1n, pid: null })), { onLatency: (_i, ms) => paced.push(ms), pace: rate });

    const cpu1 = process.cpuUsage();
    await single.close();
    await link.close();
    const cpuClose = process.cpuUsage(cpu1);

    // 100 channels from 100 connections at once.
    const chans: string[] = [];
    for (let i = 0; i < multi; i++) {
      const l = await connect();
      chans.push((await openChannel(pc, l, peer, { capacity: 500_000n, expiryBlocks: 144, feeRate: 2n })).rec.id);
      await l.close();
    }
    await chain.mine(1);
    const sessions = await Promise.all(chans.map(async (id) => PayerSession.start(pc, await connect(), id)));
    const per = 200;
    const m0 = process.hrtime.bigint();
    await Promise.all(sessions.map((s) => s.pay(Array.from({ length: per }, () => ({ sats: 1n, pid: null })))));
    const multiSeconds = Number(process.hrtime.bigint() - m0) / 1e9;

    paced.sort((a, b) => a - b);
    const doc = {
      limit: { sign_us: round(limit.sign_us), verify_us: round(limit.verify_us), sighash_us: round(limit.sighash_us), payments_per_sec: Math.round(limit.payments_per_sec) },
      single: { payments: N, payments_per_sec: Math.round(singleRate), p50_ms: round(percentile(paced, 50)), p99_ms: round(percentile(paced, 99)), paced_rate: Math.round(rate) },
      multi: { channels: multi, payments: multi * per, payments_per_sec: Math.round((multi * per) / multiSeconds) },
      ratio: round(singleRate / limit.payments_per_sec),
      payee_peak_rss_mb: round(peakRssMb(payee.child.pid!)),
      open_close_cpu_ms: round((cpuOpen.user + cpuOpen.system + cpuClose.user + cpuClose.system) / 1000),
    };
    mkdirSync('bench-results', { recursive: true });
    writeFileSync(path.join('bench-results', 'bench.json'), JSON.stringify(doc, null, 2) + '\n');
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    await Promise.all(sessions.map((s) => s.disconnect()));
    rpc.close();
  } finally {
    payeeProc?.kill('SIGTERM');
    await stopNode(nd);
    rmSync(work, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
