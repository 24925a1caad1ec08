/**
 * A real `channel serve` under attack while an honest payer pays through it, as the README
 * states its figures: 1 GiB of garbage, 300 idle connections, peers trickling a byte a
 * second, three peers flooding 64 KiB frames while the payee is stopped (SIGSTOP). Each
 * phase measures the server's resident memory and how long the honest payer's `channel pay`
 * (a whole CLI process: start, unlock, connect, pay, exit) takes. The attackers connect
 * from other loopback networks (127.0.2-5.1), as strangers elsewhere would; the honest
 * payer from 127.0.0.1.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stopChild, type Server } from './helpers/server.js';
import { startTwoDatadirs, type TwoDatadirs } from './helpers/two-datadirs.js';
import { connectTcp } from '../src/peer/transports.js';
import { generateStaticKey } from '../src/peer/keys.js';

/** What the README states: the server's resident memory stays under this, and an honest payment takes at most this long. */
const RSS_BOUND_MB = 250;
const HONEST_BOUND_MS = 5_000;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe('channel serve under attack', () => {
  let dd: TwoDatadirs;
  let pass: string;
  let server: Server;
  let channel: string;
  const a = (...args: string[]) => dd.a(...args);

  beforeAll(async () => {
    dd = await startTwoDatadirs();
    pass = dd.pass;
    server = await dd.serve({ args: ['--handshake-timeout', '3', '--idle-timeout', '5'] });
    const o = await a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--capacity', '10000000', '--passphrase-file', pass);
    expect(o.code).toBe(0);
    channel = o.json.id;
    await dd.mine();
  });
  afterAll(async () => {
    if (server) await stopChild(server.child);
    await dd?.stop();
  });

  /**
   * Runs `attack` until it resolves, paying honestly one payment at a time meanwhile;
   * returns the slowest payment and the server's peak resident memory.
   */
  async function under(attack: (until: () => boolean) => Promise<void>, ms: number): Promise<{ slowestMs: number; peakMb: number; payments: number }> {
    const end = Date.now() + ms;
    const going = () => Date.now() < end;
    let peakMb = rssMb(server.child.pid!);
    const sampler = setInterval(() => (peakMb = Math.max(peakMb, rssMb(server.child.pid!))), 100);
    let slowestMs = 0;
    let payments = 0;
    const honest = (async () => {
      while (going()) {
        const t0 = Date.now();
        const r = await a('channel', 'pay', channel, '10', '--passphrase-file', pass);
        expect(r.json?.error).toBeUndefined();
        expect(r.code).toBe(0);
        slowestMs = Math.max(slowestMs, Date.now() - t0);
        payments++;
      }
    })();
    try {
      await Promise.all([attack(going), honest]);
    } finally {
      clearInterval(sampler);
    }
    return { slowestMs, peakMb, payments };
  }

  /** A raw TCP connection from another loopback address; resolves once connected, or with null if refused. */
  const raw = (n: number): Promise<net.Socket | null> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: server.port, localAddress: `127.0.${2 + (n % 4)}.1` });
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(null));
      s.on('error', () => undefined);
    });

  test('1 GiB of garbage: dropped as it comes, never held; honest payments go on', async () => {
    let sent = 0;
    const chunk = randomBytes(1 << 20);
    const r = await under(async (going) => {
      await Promise.all(
        Array.from({ length: 4 }, async (_, n) => {
          while (going() && sent < 1 << 30) {
            const s = await raw(n);
            if (s === null) continue;
            await new Promise<void>((done) => {
              const pump = () => {
                while (going() && sent < 1 << 30 && !s.destroyed && s.write(chunk)) sent += chunk.length;
              };
              s.on('drain', pump);
              s.once('close', () => done());
              pump();
            });
          }
        }),
      );
    }, 20_000);
    // eslint-disable-next-line no-console
    console.log(`garbage: ${(sent / 2 ** 20).toFixed(0)} MiB offered; payee peak RSS ${r.peakMb.toFixed(0)} MB; ${r.payments} honest payments, slowest ${r.slowestMs} ms`);
    expect(r.payments).toBeGreaterThan(2);
    expect(r.peakMb).toBeLessThan(RSS_BOUND_MB);
    expect(r.slowestMs).toBeLessThan(HONEST_BOUND_MS);
  }, 120_000);

  test('300 idle connections, held open as fast as the server closes them, and peers trickling a byte a second', async () => {
    const held = new Set<net.Socket>();
    const r = await under(async (going) => {
      const keep = async (n: number, trickle: boolean) => {
        while (going()) {
          const s = await raw(n);
          if (s === null) continue;
          held.add(s);
          const t = trickle ? setInterval(() => s.write(Buffer.from([0])), 1_000) : null;
          await new Promise((done) => s.once('close', done));
          if (t) clearInterval(t);
          held.delete(s);
        }
      };
      await Promise.all([...Array.from({ length: 300 }, (_, n) => keep(n, false)), ...Array.from({ length: 10 }, (_, n) => keep(n, true))]);
    }, 20_000);
    for (const s of held) s.destroy();
    // eslint-disable-next-line no-console
    console.log(`idle and trickling: payee peak RSS ${r.peakMb.toFixed(0)} MB; ${r.payments} honest payments, slowest ${r.slowestMs} ms`);
    expect(r.payments).toBeGreaterThan(2);
    expect(r.peakMb).toBeLessThan(RSS_BOUND_MB);
    expect(r.slowestMs).toBeLessThan(HONEST_BOUND_MS);
  }, 120_000);

  test('three peers flood 64 KiB frames while the payee is stopped for 2 s: what it holds stays bounded, and it serves again after', async () => {
    const peerKey = Buffer.from(server.key, 'hex');
    const before = rssMb(server.child.pid!);
    const links = await Promise.all(Array.from({ length: 3 }, () => connectTcp('127.0.0.1', server.port, generateStaticKey(), { peerKey })));
    const frame = Buffer.alloc(64 * 1024 - 64, 0x7b);
    let flooding = true;
    const floods = links.map(async (l) => {
      let open = true;
      void l.closed.finally(() => (open = false)).catch(() => undefined);
      while (flooding && open) {
        try {
          l.send(frame);
        } catch {
          return; // the payee closed the link, or it failed past its send queue: both are the defence
        }
        await new Promise((r) => setImmediate(r));
      }
    });
    server.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 2_000));
    server.child.kill('SIGCONT');
    const r = await under(async (going) => {
      while (going()) await new Promise((res) => setTimeout(res, 200));
    }, 5_000);
    flooding = false;
    await Promise.all(floods);
    await Promise.all(links.map((l) => l.close().catch(() => undefined)));
    // eslint-disable-next-line no-console
    console.log(`flood: payee RSS ${before.toFixed(0)} MB before, peak ${r.peakMb.toFixed(0)} MB; ${r.payments} honest payments after, slowest ${r.slowestMs} ms`);
    expect(r.payments).toBeGreaterThan(0);
    expect(r.peakMb).toBeLessThan(RSS_BOUND_MB);
    expect(r.slowestMs).toBeLessThan(HONEST_BOUND_MS);
  }, 120_000);
});
