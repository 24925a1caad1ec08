/**
 * A minimal JSON-RPC 1.0 client over HTTP for Bitcoin Core and btcd. It knows transport
 * and authentication failures; what the methods mean is rpc-chain.ts's business.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { SwarmpayError } from '../errors.js';

export interface RpcCredentials {
  url: string;
  user: string;
  password: string;
}

export class RpcError extends Error {
  constructor(
    readonly rpcCode: number,
    message: string,
    readonly method: string,
  ) {
    super(message);
  }
}

/** Reads a Bitcoin Core style cookie file ("user:password"). */
export function readCookie(path: string): { user: string; password: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    // Not ours to read: another user's node, whose owner decides whether to share it.
    if ((e as NodeJS.ErrnoException).code === 'EACCES') {
      throw new SwarmpayError('RPC_AUTH', `cannot read the RPC cookie file ${path}: permission denied`, {
        hint: "the node belongs to another user: ask its owner to run `swarmpay node start --share-group GROUP` with a group you are in (`id -Gn`), or to give you a file from `swarmpay node credentials --out FILE` for --rpc-cookie",
      });
    }
    throw new SwarmpayError('NODE_UNREACHABLE', `cannot read the RPC cookie file ${path}: ${(e as Error).message}`, {
      hint: 'is the node running? `swarmpay node start` writes the cookie; or pass --rpc-cookie',
    });
  }
  const i = text.indexOf(':');
  if (i <= 0) throw new SwarmpayError('INVALID_FILE', `${path} is not a cookie file (expected "user:password")`);
  return { user: text.slice(0, i), password: text.slice(i + 1) };
}

export class RpcClient {
  private id = 0;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

  constructor(
    private readonly creds: RpcCredentials,
    private readonly timeoutMs = 30_000,
  ) {}

  // Results are JSON whose shape each caller checks, so the generic default is `unknown`.
  call<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    const body = JSON.stringify({ jsonrpc: '1.0', id: ++this.id, method, params });
    const url = new URL(this.creds.url);
    const auth = Buffer.from(`${this.creds.user}:${this.creds.password}`).toString('base64');
    return new Promise<T>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port || 80,
          path: url.pathname || '/',
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', authorization: `Basic ${auth}`, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode === 401 || res.statusCode === 403) {
              reject(
                new SwarmpayError('RPC_AUTH', `the node at ${this.creds.url} refused our RPC credentials`, {
                  hint: 'check --rpc-cookie (or the user and password in the URL); after a node restart the cookie changes',
                }),
              );
              return;
            }
            const text = Buffer.concat(chunks).toString('utf8');
            let doc: { result?: unknown; error?: { code: number; message: string } | null };
            try {
              doc = JSON.parse(text);
            } catch {
              reject(new SwarmpayError('RPC_ERROR', `the node answered ${method} with HTTP ${res.statusCode} and no JSON: ${text.slice(0, 120)}`));
              return;
            }
            if (doc.error) reject(new RpcError(doc.error.code, doc.error.message, method));
            else resolve(doc.result as T);
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(new SwarmpayError('TIMEOUT', `the node at ${this.creds.url} did not answer ${method} within ${this.timeoutMs / 1000} s`));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof SwarmpayError) return reject(e);
        reject(
          new SwarmpayError('NODE_UNREACHABLE', `cannot reach the node at ${this.creds.url}: ${e.code ?? e.message}`, {
            hint: 'start it with `swarmpay node start`, or point --rpc-url at a running node',
          }),
        );
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
