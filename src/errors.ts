/**
 * Every failure below the CLI is a SwarmpayError with a stable code. The CLI maps
 * the code to an exit status (src/cli/exit-codes.ts) and prints `message` and `hint`.
 */
export type ErrorCode =
  // usage
  | 'USAGE'
  | 'INVALID_ADDRESS'
  | 'INVALID_AMOUNT'
  // refused by a policy or safety check, or by the node
  | 'WRONG_NETWORK'
  | 'DUST_OUTPUT'
  | 'FEE_TOO_HIGH'
  | 'FEE_RATE_REQUIRED'
  | 'INSUFFICIENT_FUNDS'
  | 'TX_CHECK_FAILED'
  | 'TX_REJECTED'
  | 'KEYSTORE_NETWORK'
  | 'KEYSTORE_EXISTS'
  | 'INVALID_MNEMONIC'
  | 'INVALID_FILE'
  | 'WEAK_PASSPHRASE'
  | 'NOT_REGTEST'
  /** The chain backend cannot give a wallet's whole history (Bitcoin Core has no address index). */
  | 'HISTORY_UNAVAILABLE'
  // not found
  | 'WALLET_NOT_FOUND'
  | 'TX_NOT_FOUND'
  | 'NODE_NOT_INSTALLED'
  // unreachable
  | 'NODE_UNREACHABLE'
  | 'NODE_START_FAILED'
  | 'RPC_AUTH'
  | 'RPC_ERROR'
  | 'TIMEOUT'
  // keystore locked
  | 'KEYSTORE_LOCKED'
  | 'KEYSTORE_BUSY'
  | 'KEYSTORE_CORRUPT'
  | 'WRONG_PASSPHRASE'
  // TPM
  | 'TPM_UNREACHABLE'
  | 'TPM_PROTOCOL'
  | 'TPM_REFUSED'
  | 'TPM_LOCKOUT'
  | 'TPM_POLICY_FAIL'
  | 'TPM_WRONG_TPM'
  | 'TPM_ALREADY_PROVISIONED'
  | 'TPM_UNAVAILABLE'
  | 'ROLLBACK_DETECTED'
  | 'ATTESTATION_INVALID'
  // peer link
  | 'PEER_UNREACHABLE'
  | 'PEER_TIMEOUT'
  | 'PEER_LISTEN_FAILED'
  | 'PEER_CLOSED'
  | 'PEER_PROTOCOL'
  | 'PEER_AUTH_FAILED'
  | 'PEER_KEY_MISMATCH'
  /** A server at its limit of connections or handshakes (in its log; the peer only sees the connection closed). */
  | 'PEER_REFUSED'
  // channels
  | 'CHANNEL_REFUSED'
  | 'CHANNEL_STATE'
  | 'CHANNEL_EXPIRING'
  | 'CHANNEL_SPENT'
  | 'CHANNEL_NOT_FOUND'
  | 'FUNDING_MISMATCH'
  // escrow
  | 'OFFER_INVALID'
  | 'OFFER_EXPIRED'
  | 'PRICE_ABOVE_LIMIT'
  | 'CIPHERTEXT_MISMATCH'
  | 'ESCROW_STATE'
  | 'ESCROW_TOO_EARLY'
  | 'ESCROW_TOO_LATE'
  | 'SELLER_CHEATED'
  | 'ESCROW_NOT_FOUND'
  // disk
  | 'IO_ERROR'
  // a bug
  | 'INTERNAL';

export class SwarmpayError extends Error {
  readonly code: ErrorCode;
  /** One sentence on what the user can do about it. */
  readonly hint: string | undefined;
  /** Machine-readable details for --json output (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SwarmpayError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }
}

export function isSwarmpayError(e: unknown, code?: ErrorCode): e is SwarmpayError {
  return e instanceof SwarmpayError && (code === undefined || e.code === code);
}

/** Turns a Node system error from file I/O into a SwarmpayError that names the path. */
export function ioError(what: string, path: string, e: unknown): SwarmpayError {
  const sys = e as NodeJS.ErrnoException;
  const reason = sys?.code === 'ENOSPC' ? 'the disk is full' : sys?.code === 'EACCES' ? 'permission denied' : String(sys?.message ?? e);
  return new SwarmpayError('IO_ERROR', `could not ${what} ${path}: ${reason}`, {
    hint: sys?.code === 'ENOSPC' ? 'free some disk space and run the command again; nothing was changed' : 'check the path and its permissions',
    cause: e,
  });
}
