/** How the library opens a keystore: the caller's passphrase (or a function that asks for it), or the environment's TPM. */
import { SwarmpayError } from '../errors.js';
import type { Unlocker } from '../keystore/keystore.js';
import { describeSpec } from '../tpm/tpm.js';
import type { Environment } from './environment.js';

/**
 * What a keystore is opened (or made) for, which decides whether a passphrase-only
 * keystore is worth a warning: at its creation, and where coins leave the wallet or are
 * locked ('spend': a payment, a fee bump, a channel's funding or payments, an escrow's
 * funding). Not for anything else ('other': reading records, serving, taking coins back by
 * a close, refund or claim, and sealing it to the TPM, which is what the warning asks for):
 * said on every read, it would be noise no one reads by the time it matters.
 */
export type KeystoreUse = 'create' | 'spend' | 'other';

/** A warning that only a passphrase guards the keystore, and the way out. */
export interface PassphraseOnly {
  /** The TPM this device has (`swtpm:HOST:PORT`, `device:PATH`), to which `tpm provision` would seal the keystore; null when there is none. */
  tpm: string | null;
}

/** What the library tells the function that asks for the passphrase: why, and the warning due first (null: none). */
export interface PassphraseAsk {
  use: KeystoreUse;
  passphraseOnly: PassphraseOnly | null;
}

/** A passphrase, or a function asking for it (called only if the keystore needs one); a TPM-sealed keystore needs none. */
export interface Credentials {
  passphrase?: string | ((ask: PassphraseAsk) => Promise<string>);
}

/** The warning a passphrase keystore is due when opened (or made) for `use`, or null. */
export function passphraseOnlyWarning(env: Environment, use: KeystoreUse): PassphraseOnly | null {
  if (use === 'other') return null;
  const spec = env.tpmSpec;
  return { tpm: spec.kind === 'none' ? null : describeSpec(spec) };
}

export function unlockerFor(env: Environment, c: Credentials, use: KeystoreUse): Unlocker {
  return {
    passphrase: async () => {
      if (typeof c.passphrase === 'function') return c.passphrase({ use, passphraseOnly: passphraseOnlyWarning(env, use) });
      if (c.passphrase === undefined) throw new SwarmpayError('KEYSTORE_LOCKED', 'the keystore is protected by a passphrase and none was given', { hint: 'pass the passphrase (--passphrase-file FILE)' });
      return c.passphrase;
    },
    tpm: () => env.tpm(),
  };
}
