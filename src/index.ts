/**
 * swarmpay as a library: `import { Swarmpay } from 'swarmpay'`.
 *
 * - {@link Swarmpay}: a datadir on a network: create the wallet, addresses, balance, send,
 *   the TPM ({@link TpmApi}), and {@link Swarmpay.unlock} for a {@link Wallet}.
 * - {@link Wallet}: an unlocked wallet: its payment channels ({@link Channels}) and its
 *   escrows ({@link Escrows}), as payer and payee, buyer and seller, and their servers.
 * - {@link RegtestNode}: the embedded regtest node, for tests and trials.
 *
 * Amounts are satoshis as bigint. Results are the objects `swarmpay … --json` prints.
 * Every failure is a {@link SwarmpayError} whose `code` is stable (the README lists them).
 */
export { Swarmpay, Wallet, MIN_PASSPHRASE_LENGTH } from './api/swarmpay.js';
export type { Balance, BumpOptions, BumpResult, Credentials, FreshAddress, History, HistoryEntry, HistoryOptions, KeystoreUse, PassphraseAsk, PassphraseOnly, SendAmount, SendOptions, SendResult, SendSummary, WalletCoin, WalletCreated, WalletInfo } from './api/swarmpay.js';
export { Environment, CHAIN_KINDS } from './api/environment.js';
export type { ChainKind, SwarmpayOptions } from './api/environment.js';
export type { ContractsPart, NodePart, Overview, PartError, TpmPart, Unavailable, WalletPart } from './api/info.js';
export { Batch, Channels, DEFAULT_EXPIRY_BLOCKS, DEFAULT_POLICY, MAX_CHANNELS_PER_FUNDING, stoppedRun } from './api/channels.js';
export type { BatchSource, ChannelReport, ChannelSession, ChannelSpec, FundingWait, ChannelOpenOptions, ChannelServeOptions, OpenConsent, OpenManyReport, OpenOptions, OpenReport, PayEvents, PaySummary, PayeePolicy, Recovery, SentPayment, SessionPayOptions, SkippedPayment, SkipReason } from './api/channels.js';
export { Escrows } from './api/escrow.js';
export type { AcceptConsent, AcceptedEscrow, AcceptFrom, AcceptInput, AcceptWarning, Claimed, ClaimInput, ClaimProgress, EscrowServeOptions, EscrowSummary, OfferInput, OfferMade, Refunded } from './api/escrow.js';
export { TpmApi, DEFAULT_QUOTE_PCRS } from './api/tpm.js';
export type { AttestationDoc, EnrolledAttestation, KeystoreStatus, PcrAllowList, Provisioned, TpmStatus, TrustedIdentity, VerifiedAttestation, VerifyOptions } from './api/tpm.js';
export { RegtestNode } from './api/node.js';
export type { Mined, NodeCredentials, NodeImpl, NodeStarted, NodeStatus, Shared } from './api/node.js';
export type { Listen, PeerLocation, Server, ServerOptions } from './api/server.js';
export { DEFAULT_WAIT_MS } from './api/wait.js';
export type { WaitHooks } from './api/wait.js';
export { SwarmpayError, isSwarmpayError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { parseSats, formatBtc, MAX_MONEY } from './bitcoin/amount.js';
export { FeeRate } from './bitcoin/fee-rate.js';
export { parseFeeRate, MIN_RELAY_FEE_RATE, MAX_FEE_RATE } from './bitcoin/policy.js';
