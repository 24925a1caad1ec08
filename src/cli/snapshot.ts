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
import { runAndExit } from './main.js';
import { buildProgram } from './program.js';
// What a command loads when it runs, beyond the program's definition: the library behind each
// command group. The CLI's context stays out: its colours (chalk) look at the terminal as they load.
import '../api/swarmpay.js';
import '../api/channels.js';
import '../api/escrow.js';
import '../api/node.js';

// Defining the program once here leaves its functions compiled in the snapshot; each run
// defines its own (the definition reads nothing of the process, or the build would fail).
buildProgram();

startupSnapshot.setDeserializeMainFunction(() => {
  void runAndExit(process.argv);
});
