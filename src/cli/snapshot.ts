/**
 * The CLI as a V8 start-up snapshot: scripts/bundle-cli.mjs bundles this file into one script
 * and runs it under `node --build-snapshot`, and bin/swarmpay starts Node on the saved heap
 * when it was built by the same Node. The modules imported here are then evaluated once, at
 * build time, not in every run: compiling and evaluating the library was a third of a
 * `channel pay`. What a module reads from its process as it is evaluated (the environment, a
 * tty, the clock) would be the build's, so the build refuses any such module
 * (scripts/snapshot-prelude.cjs); the modules left out here load in the run, as in the bundle.
 */
import { startupSnapshot } from 'node:v8';
import { prepareSigning } from '../bitcoin/ecc.js';
import { runAndExit } from './main.js';
import { buildProgram } from './program.js';
import { startedFromSnapshot } from './start.js';
// What a command loads when it runs, beyond the program's definition: its context and output,
// and the library behind each command group.
import './context.js';
import '../api/swarmpay.js';
import '../api/channels.js';
import '../api/escrow.js';
import '../api/node.js';

// Work each run would do first, done once here and kept in the heap. None of it reads the
// process (or the build would fail): defining the program leaves its functions compiled, each
// run still defining its own; URL's parser sets itself up on its first URL (3 ms of a payment's
// call to the node); the curve tables make a first signature 3 ms instead of loading
// tiny-secp256k1 (11 ms).
buildProgram();
new URL('http://127.0.0.1:8334/');
prepareSigning();

startupSnapshot.setDeserializeMainFunction(() => {
  startedFromSnapshot();
  void runAndExit(process.argv);
});
