/**
 * `npm run bench`: payment-channel throughput and latency on this machine, against limits
 * measured in the same run. The payee is a real `swarmpay channel serve` in its own process
 * (its own core), the payer is this process; both keep durable state; everything runs
 * against a fresh regtest btcd. The payer, the node and the wallets are driven through the
 * library API as a program would drive them; only the two limits (a signature's cost, the
 * link's ceiling) are measured on the building blocks, since they are what the protocol is
 * measured against, not a flow. The `cli` section times whole CLI processes as a script
 * runs them: `--version`, `wallet balance`, and one `channel pay` from a TPM-sealed wallet.
 * Prints one JSON document and writes it to bench-results/bench.json; `npm run bench --
 * SECTION…` runs only the sections named (channels, cli).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FeeRate, MAX_CHANNELS_PER_FUNDING, RegtestNode, Swarmpay, type Wallet } from '../index.js';
import { SCRYPT_N_MIN } from '../keystore/crypto.js';
// The building blocks the two limits are measured on.
import { StateHasher, signState, verifyState } from '../bitcoin/channel.js';
import { FRAME_BYTES, SEND_YIELD_EVERY } from '../channel/payer.js';
import { MAX_UNCOVERED } from '../channel/messages.js';
import { PaymentsWriter } from '../channel/payments-codec.js';
import { nextFrame } from '../peer/json-messages.js';
import { peerStaticKey, parsePeerKey } from '../peer/keys.js';
import { connectTcp } from '../peer/transports.js';
import { CHANNEL_CHAIN, contractKey } from '../wallet/hd.js';

const BIN = fileURLToPath(new URL('../../bin/swarmpay', import.meta.url));
const SINK = fileURLToPath(new URL('./link-sink.js', import.meta.url));
const PASS = 'bench passphrase, not a secret';

const SINGLE = 200_000;
const PACED = 50_000;
const PACED_RATE = 25_000;
const AT_1K = 10_000;
const AT_1K_WARMUP = 1_000;
const MULTI = 100;
const MULTI_EACH = 2_000;
const MANY = 1_000;
const MANY_EACH = 100;
const CLI_BATCH = 200_000;
/** Runs of each command in the cli section; its figures are their medians. */
const CLI_RUNS = 10;
/** Issue 15's targets for the cli section, wall clock in ms. */
const CLI_TARGETS = { version: 80, wallet_balance: 150, channel_pay: 150 } as const;

const SECTIONS = ['channels', 'cli'] as const;
type Section = (typeof SECTIONS)[number];

/** The sections named on the command line (`npm run bench -- cli`), all of them by default. */
function sectionsWanted(args: string[]): Set<Section> {
  for (const a of args) if (!(SECTIONS as readonly string[]).includes(a)) throw new Error(`unknown bench section "${a}": the sections are ${SECTIONS.join(', ')}`);
  return new Set(args.length === 0 ? SECTIONS : (args as Section[]));
}

function micros(n: number, f: () => void): number {
  for (let i = 0; i < Math.min(200, n); i++) f();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

/**
 * Sign, verify and sighash cost: what a signature per payment would allow. On the
 * primitives: the cost of one signature is the limit the protocol is measured against.
 */
function measureSignatures() {
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

/** Starts a child that prints one JSON line when it is ready, and returns it with that line. */
/** Starts `command ...args` and waits for its first line of JSON. */
async function startChild<T>([command, ...args]: string[]): Promise<{ child: ChildProcess; ready: T }> {
  const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr!.resume();
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { child, ready: JSON.parse(first) as T };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * The link's ceiling: payments packed into frames exactly as a payer packs them, over the
 * same Noise link to a process that reads each and acknowledges each frame, within the
 * same window; nothing signed, verified or written. On the primitives, with link-sink.ts
 * at the far end: the ceiling of the link itself, which no flow through the API reaches.
 */
async function linkLimit(port: number, key: string, n: number): Promise<number> {
  const link = await connectTcp('127.0.0.1', port, peerStaticKey(randomBytes(64)), { peerKey: parsePeerKey(key) });
  const it = link.messages()[Symbol.asyncIterator]();
  let acked = 0;
  const wake: { waiter: (() => void) | null } = { waiter: null };
  const reader = (async () => {
    while (acked < n) {
      acked = (JSON.parse((await nextFrame(it, 'the link sink went away')).toString()) as { seq: number }).seq;
      wake.waiter?.();
    }
  })();
  const w = new PaymentsWriter(FRAME_BYTES);
  const t0 = process.hrtime.bigint();
  for (let seq = 1; seq <= n; seq++) {
    w.payment(seq, 1, null);
    if (!w.roomy) link.send(w.take());
    while (seq - acked >= MAX_UNCOVERED) {
      if (!w.empty) link.send(w.take());
      await new Promise<void>((r) => (wake.waiter = r));
    }
    if (seq % SEND_YIELD_EVERY === 0) {
      if (!w.empty) link.send(w.take());
      await new Promise((r) => setImmediate(r));
    }
  }
  if (!w.empty) link.send(w.take());
  await reader;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await link.close();
  return n / seconds;
}

/** What the sections share: a fresh regtest node with its software TPM, a payer's wallet, and a payee serving channels in its own process. */
interface Setup {
  work: string;
  node: RegtestNode;
  started: Awaited<ReturnType<RegtestNode['start']>>;
  payer: Wallet;
  payerDir: string;
  passFile: string;
  /** The CLI's options for this node, with no TPM (the payer's and payee's passphrase wallets). */
  chainArgs: string[];
  payee: { child: ChildProcess; ready: { listening: string; peerKey: string } };
  /** Opens `n` channels of `capacity` from `wallet` (the payer's by default), as many to a funding as one holds, and confirms them. */
  openChannels(n: number, capacity: bigint, wallet?: Wallet): Promise<string[]>;
}

/** Payment channels: throughput, latency, many channels, the CLI's batch, against the two limits. */
async function channelsSection(x: Setup, signatures: ReturnType<typeof measureSignatures>, link_payments_per_sec: number) {
  const { payer, openChannels, work, payerDir, chainArgs, passFile, payee } = x;
  // One channel, and the CPU time to open and close it.
  const cpu0 = process.cpuUsage();
  const [single] = await openChannels(1, 1_000_000n);
  const s = await payer.channels.connect(single!);
  const cpuOpen = process.cpuUsage(cpu0);
  /** Each payment's time from send to acknowledgement, paced at `rate` a second. */
  const latencies = async (n: number, rate: number) => {
    const ms: number[] = [];
    await s.pay(1n, { count: n, pace: rate, onLatency: (_i, t) => ms.push(t) });
    return ms.sort((a, b) => a - b);
  };
  // The light load first, as a device meets it: both processes warmed up, but not in the
  // wake of the runs at full speed (whose garbage and disk traffic take seconds to settle).
  await latencies(AT_1K_WARMUP, 1_000);
  const slow = await latencies(AT_1K, 1_000);
  const r1 = await s.pay(1n, { count: SINGLE });
  const singleRate = SINGLE / r1.seconds;
  const paced = await latencies(PACED, PACED_RATE);
  const half = await latencies(PACED, singleRate / 2);

  const cpu1 = process.cpuUsage();
  await s.close();
  await s.disconnect();
  const cpuClose = process.cpuUsage(cpu1);

  // 100 channels over 100 connections at once, then 1,000.
  const concurrently = async (n: number, each: number) => {
    const ids = await openChannels(n, BigInt(each) + 50_000n);
    const sessions = await Promise.all(ids.map((id) => payer.channels.connect(id)));
    const t0 = process.hrtime.bigint();
    await Promise.all(sessions.map((x) => x.pay(1n, { count: each })));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await Promise.all(sessions.map((x) => x.disconnect()));
    return (n * each) / seconds;
  };
  const multiRate = await concurrently(MULTI, MULTI_EACH);
  const manyRate = await concurrently(MANY, MANY_EACH);

  // The CLI: a batch of JSON lines, from process start to exit, its JSON lines to /dev/null.
  const [batchChannel] = await openChannels(1, BigInt(CLI_BATCH) + 100_000n);
  const batchFile = path.join(work, 'batch.jsonl');
  writeFileSync(batchFile, Array.from({ length: CLI_BATCH }, (_, i) => `{"id":"order-${i}","channel":"${batchChannel!}","sats":1}`).join('\n') + '\n');
  const c0 = process.hrtime.bigint();
  const cli = spawn(BIN, ['--datadir', payerDir, ...chainArgs, '--json', 'channel', 'pay', '--batch', batchFile, '--passphrase-file', passFile], { stdio: 'ignore' });
  const cliCode = await new Promise<number | null>((r) => cli.once('exit', r));
  const cliSeconds = Number(process.hrtime.bigint() - c0) / 1e9;
  if (cliCode !== 0) throw new Error(`channel pay --batch exited with ${cliCode}`);

  return {
    limit: { sign_us: round(signatures.sign_us), verify_us: round(signatures.verify_us), sighash_us: round(signatures.sighash_us), payments_per_sec: Math.round(signatures.payments_per_sec), link_payments_per_sec: Math.round(link_payments_per_sec) },
    single: {
      payments: SINGLE,
      payments_per_sec: Math.round(singleRate),
      p50_ms: round(percentile(paced, 50)),
      p99_ms: round(percentile(paced, 99)),
      paced_rate: PACED_RATE,
      p50_ms_at_1k: round(percentile(slow, 50)),
      p99_ms_at_1k: round(percentile(slow, 99)),
      p99_ms_at_half: round(percentile(half, 99)),
    },
    multi: { channels: MULTI, payments: MULTI * MULTI_EACH, payments_per_sec: Math.round(multiRate) },
    many: { channels: MANY, payments: MANY * MANY_EACH, payments_per_sec: Math.round(manyRate) },
    cli_batch: { payments: CLI_BATCH, seconds: round(cliSeconds), payments_per_sec: Math.round(CLI_BATCH / cliSeconds) },
    ratio: round(singleRate / link_payments_per_sec),
    payee_peak_rss_mb: round(peakRssMb(payee.child.pid!)),
    open_close_cpu_ms: round((cpuOpen.user + cpuOpen.system + cpuClose.user + cpuClose.system) / 1000),
  };
}

/** Wall-clock ms of one run of `node ARGS`, from spawn to exit, its output discarded; a failed run throws. */
async function wallMs([command, ...args]: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr}`);
  return ms;
}

const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

/**
 * The CLI's start-up as a script meets it: `node -e 0` (the floor), `--version`, `wallet
 * balance` against the running node, and one `channel pay` of 1 sat from a TPM-sealed wallet
 * to the running payee, each run CLI_RUNS times in turn (so that a burst of load on the
 * machine falls on all of them alike), after one run of each to warm the disk cache.
 */
async function cliSection(x: Setup) {
  const { started } = x;
  if (started.tpm === null) throw new Error(`the cli section needs the software TPM: ${started.tpmUnavailable?.message ?? 'swtpm did not start'}`);
  const dir = path.join(x.work, 'cli-payer');
  const onNode = ['--datadir', dir, '--rpc-url', started.rpcUrl, '--rpc-cookie', started.rpcCookie, '--tpm', `swtpm:${started.tpm.host}:${started.tpm.port}`];
  const api = new Swarmpay({ datadir: dir, ...x.node.options(), tpm: `swtpm:${started.tpm.host}:${started.tpm.port}` });
  let channel: string;
  try {
    api.createWallet({ passphrase: PASS, scrypt: { N: SCRYPT_N_MIN, r: 8, p: 1 } });
    await api.tpm.provision({ passphrase: async () => PASS });
    await x.node.fund((await api.address()).address, 5_000_000n);
    await x.node.mine(1);
    channel = (await x.openChannels(1, 1_000_000n, await api.unlock()))[0]!;
  } finally {
    await api.close();
  }
  const cases = {
    floor: [process.execPath, '-e', '0'],
    version: [BIN, '--version'],
    wallet_balance: [BIN, ...onNode, 'wallet', 'balance'],
    channel_pay: [BIN, ...onNode, 'channel', 'pay', channel, '1'],
  };
  const names = Object.keys(cases) as (keyof typeof cases)[];
  const ms = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof cases, number[]>;
  const load = [loadavg()[0]!];
  for (const n of names) await wallMs(cases[n]);
  for (let i = 0; i < CLI_RUNS; i++) for (const n of names) ms[n].push(await wallMs(cases[n]));
  load.push(loadavg()[0]!);
  const figure = (n: keyof typeof CLI_TARGETS) => ({ median_ms: round(median(ms[n])), target_ms: CLI_TARGETS[n], ratio: round(median(ms[n]) / CLI_TARGETS[n]) });
  return {
    runs: CLI_RUNS,
    floor_ms: round(median(ms.floor)),
    version: figure('version'),
    wallet_balance: figure('wallet_balance'),
    channel_pay: figure('channel_pay'),
    load_avg_1m: load.map(round),
  };
}

async function main(): Promise<void> {
  const sections = sectionsWanted(process.argv.slice(2));
  const work = mkdtempSync(path.join(tmpdir(), 'swarmpay-bench-'));
  const node = new RegtestNode({ datadir: path.join(work, 'node') });
  const children: ChildProcess[] = [];
  const apis: Swarmpay[] = [];
  try {
    let limits: [ReturnType<typeof measureSignatures>, number] | null = null;
    if (sections.has('channels')) {
      const signatures = measureSignatures();
      const sink = await startChild<{ port: number; key: string }>([process.execPath, SINK]);
      children.push(sink.child);
      limits = [signatures, await linkLimit(sink.ready.port, sink.ready.key, SINGLE)];
    }

    const started = await node.start();
    const onNode = { ...node.options(), tpm: 'none' };
    const [payerDir, payeeDir] = [path.join(work, 'payer'), path.join(work, 'payee')];
    const payerApi = new Swarmpay({ datadir: payerDir, ...onNode });
    apis.push(payerApi, new Swarmpay({ datadir: payeeDir, ...onNode }));
    // The smallest cost a keystore accepts: the bench measures payments, not unlocking.
    for (const api of apis) api.createWallet({ passphrase: PASS, scrypt: { N: SCRYPT_N_MIN, r: 8, p: 1 } });
    const passFile = path.join(work, 'pass');
    writeFileSync(passFile, PASS);
    const payer = await payerApi.unlock({ passphrase: PASS });
    // A coin per funding: each open spends confirmed coins only.
    for (let i = 0; i < 10; i++) await node.fund((await payerApi.address()).address, 40_000_000n + BigInt(i));
    await node.mine(1);

    const chainArgs = ['--rpc-url', started.rpcUrl, '--rpc-cookie', started.rpcCookie, '--tpm', 'none'];
    const payee = await startChild<{ listening: string; peerKey: string }>([BIN, '--datadir', payeeDir, ...chainArgs, '--json', 'channel', 'serve', '--listen', '127.0.0.1:0', '--passphrase-file', passFile, '--max-capacity', '2100000000000000']);
    children.push(payee.child);
    const openChannels = async (n: number, capacity: bigint, wallet = payer): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < n; i += MAX_CHANNELS_PER_FUNDING) {
        const specs = Array.from({ length: Math.min(MAX_CHANNELS_PER_FUNDING, n - i) }, () => ({ peer: payee.ready.listening, peerKey: payee.ready.peerKey, capacity, expiryBlocks: 144 }));
        ids.push(...(await wallet.channels.openMany(specs, FeeRate.ofSatPerVb(2n))).channels.map((c) => c.id));
        await node.mine(1);
      }
      return ids;
    };
    const setup: Setup = { work, node, started, payer, payerDir, passFile, chainArgs, payee, openChannels };

    const doc = {
      ...(limits === null ? {} : await channelsSection(setup, ...limits)),
      ...(sections.has('cli') ? { cli: await cliSection(setup) } : {}),
    };
    mkdirSync('bench-results', { recursive: true });
    writeFileSync(path.join('bench-results', 'bench.json'), JSON.stringify(doc, null, 2) + '\n');
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(apis.map((a) => a.close()));
    await node.stop();
    await node.close();
    rmSync(work, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
