/**
 * The peer link's default limits, apart from the link's code: the CLI shows them in its
 * servers' help without loading the link.
 */

/** What may wait for a peer that does not read (a channel payer's window is about 1 MiB at most). */
export const SEND_QUEUE_BYTES = 4 * 1024 * 1024;

/** Peers a server holds at once, handshakes included, and handshakes it runs at once. */
export const DEFAULT_MAX_CONNECTIONS = 4_096;
export const DEFAULT_MAX_HANDSHAKES = 64;
