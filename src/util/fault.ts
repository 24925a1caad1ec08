/**
 * Test-only fault points: with SWARMPAY_FAULT=<name> the process kills itself (SIGKILL) at
 * the point of that name. A crash at one exact instant cannot be produced on demand from
 * outside, and recovery from it must be tested; nothing else in swarmpay reads this.
 *
 * - kill-before-counter: a keystore checkpoint, between the file write and the TPM counter
 * - kill-after-accept: a payee, once it has answered a channel `open`
 */
type Fault = 'kill-before-counter' | 'kill-after-accept';

export function faultPoint(name: Fault): void {
  if (process.env.SWARMPAY_FAULT === name) process.kill(process.pid, 'SIGKILL');
}

/** The same, once what this turn wrote to sockets has been handed to the kernel (writes are coalesced per tick). */
export function faultPointAfterWrites(name: Fault): void {
  if (process.env.SWARMPAY_FAULT === name) setImmediate(() => faultPoint(name));
}
