/**
 * Transports carry command bytes to a TPM and response bytes back; they know nothing of
 * commands. Two exist: swtpm's TCP data socket, and the kernel's resource manager device.
 */
import net from 'node:net';
import { open, type FileHandle } from 'node:fs/promises';
import { SwarmpayError } from '../errors.js';

export interface Transport {
  send(command: Uint8Array): Promise<Buffer>;
  close(): Promise<void>;
  /** For messages: "swtpm 127.0.0.1:2321", "/dev/tpmrm0". */
  readonly describe: string;
}

/** Part 1, 18.? — every response starts with tag (2), size (4), code (4). */
const HEADER = 10;
/** No TPM response is larger than this (TPM_PT_MAX_RESPONSE_SIZE is 4 KiB on PC Client TPMs). */
const MAX_RESPONSE = 64 * 1024;

function unreachable(where: string, why: string): SwarmpayError {
  return new SwarmpayError('TPM_UNREACHABLE', `cannot reach the TPM at ${where}: ${why}`, {
    hint: 'check --tpm (auto, swtpm:HOST:PORT, device:/dev/tpmrm0 or none); `swarmpay node start` runs a software TPM on regtest',
  });
}

/** swtpm's data channel: raw TPM commands over one TCP connection, answered in order. */
export class SwtpmTransport implements Transport {
  readonly describe: string;
  private pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private buf = Buffer.alloc(0);
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sock: net.Socket,
    host: string,
    port: number,
    private readonly timeoutMs: number,
  ) {
    this.describe = `swtpm ${host}:${port}`;
    sock.on('data', (d: Buffer) => this.onData(d));
    const fail = (e: Error) => {
      this.pending?.reject(unreachable(this.describe, e.message));
      this.pending = null;
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  static connect(host: string, port: number, timeoutMs = 30_000): Promise<SwtpmTransport> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      sock.setNoDelay(true);
      const t = setTimeout(() => {
        sock.destroy();
        reject(unreachable(`swtpm ${host}:${port}`, 'connection timed out'));
      }, 5_000);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(new SwtpmTransport(sock, host, port, timeoutMs));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        reject(unreachable(`swtpm ${host}:${port}`, e.code ?? e.message));
      });
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (this.buf.length < HEADER || !this.pending) return;
    const size = this.buf.readUInt32BE(2);
    if (size < HEADER || size > MAX_RESPONSE) {
      this.pending.reject(new SwarmpayError('TPM_PROTOCOL', `${this.describe} sent a response of impossible size ${size}`));
      this.pending = null;
      this.sock.destroy();
      return;
    }
    if (this.buf.length < size) return;
    const response = this.buf.subarray(0, size);
    this.buf = this.buf.subarray(size);
    const p = this.pending;
    this.pending = null;
    p.resolve(Buffer.from(response));
  }

  send(command: Uint8Array): Promise<Buffer> {
    // One command at a time: a TPM is a strict request/response device.
    const run = () =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.sock.destroyed) return reject(unreachable(this.describe, 'connection closed'));
        const timer = setTimeout(() => {
          this.pending = null;
          // The answer may still come: the connection can no longer tell whose it is.
          this.sock.destroy();
          reject(new SwarmpayError('TIMEOUT', `${this.describe} did not answer within ${this.timeoutMs / 1000} s`));
        }, this.timeoutMs);
        this.pending = {
          resolve: (b) => (clearTimeout(timer), resolve(b)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        };
        this.sock.write(command);
      });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    this.sock.end();
    this.sock.destroy();
  }
}

/** /dev/tpmrm0: one write of a command, one read of its response. */
export class DeviceTransport implements Transport {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(
    private readonly fh: FileHandle,
    readonly describe: string,
  ) {}

  static async open(path: string): Promise<DeviceTransport> {
    try {
      return new DeviceTransport(await open(path, 'r+'), path);
    } catch (e) {
      throw unreachable(path, (e as NodeJS.ErrnoException).code ?? String(e));
    }
  }

  send(command: Uint8Array): Promise<Buffer> {
    const run = async () => {
      await this.fh.write(command);
      const buf = Buffer.alloc(MAX_RESPONSE);
      const { bytesRead } = await this.fh.read(buf, 0, MAX_RESPONSE, null);
      return buf.subarray(0, bytesRead);
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
