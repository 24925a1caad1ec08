/** How the library opens a keystore: the caller's passphrase (or a function that asks for it), or the environment's TPM. */
import { SwarmpayError } from '../errors.js';
import type { Unlocker } from '../keystore/keystore.js';
import type { Environment } from './environment.js';

/** A passphrase, or a function asking for it (called only if the keystore needs one); a TPM-sealed keystore needs none. */
export interface Credentials {
  passphrase?: string | (() => Promise<string>);
}

export function unlockerFor(env: Environment, c: Credentials): Unlocker {
  return {
    passphrase: async () => {
      if (typeof c.passphrase === 'function') return c.passphrase();
      if (c.passphrase === undefined) throw new SwarmpayError('KEYSTORE_LOCKED', 'the keystore is protected by a passphrase and none was given', { hint: 'pass the passphrase (--passphrase-file FILE)' });
      return c.passphrase;
    },
    tpm: () => env.tpm(),
  };
}
