/* The first lines of dist/snapshot/swarmpay.cjs, before any module of the CLI (scripts/bundle-cli.mjs
 * puts them there). `node --build-snapshot` runs that file once, at build time, and saves the heap:
 * whatever a module computes when it is evaluated is then the same in every later run. So, while the
 * snapshot is being built:
 *
 * - Node's built-in modules are not loaded. Each is an object of getters with the module's keys
 *   (listed by the build script, from the same Node), which load the module on first use, at run
 *   time: a module that uses one as it is evaluated (reads os.homedir(), a tty's colours, a random
 *   number) would have kept the build's answer, and several (http, tty, child_process) are not
 *   supported in a snapshot at all.
 * - What a run reads from its process and the clock throws: the environment, the arguments, the
 *   streams, the working directory, the user, the time, random numbers, timers and signal
 *   handlers. A module that reads one as it is evaluated fails the build, naming it, and is left
 *   out of the snapshot's preloaded modules (src/cli/snapshot.ts) or changed to read it later.
 *
 * Once the snapshot is taken, or in a run, everything is as Node made it.
 */
/* eslint-disable */
var __snapshotBuiltinRequire = require;
var __snapshotBuilding = true;
var __snapshotLazyKeys = __SNAPSHOT_LAZY_KEYS__;
var __snapshotLazy = new Map();
var require = (id) => {
  const keys = __snapshotLazyKeys[id];
  if (keys === undefined) return __snapshotBuiltinRequire(id);
  let lazy = __snapshotLazy.get(id);
  if (lazy === undefined) {
    let loaded;
    const load = () => {
      if (__snapshotBuilding) throw new Error(`the snapshot would keep the build's ${id}: a module uses it as it is evaluated`);
      return (loaded ??= process.getBuiltinModule(id));
    };
    lazy = {};
    for (const key of keys) Object.defineProperty(lazy, key, { enumerable: true, get: () => load()[key] });
    __snapshotLazy.set(id, lazy);
  }
  return lazy;
};
(() => {
  const restore = [];
  const refuse = (object, key, what) => {
    const own = Object.getOwnPropertyDescriptor(object, key);
    Object.defineProperty(object, key, {
      configurable: true,
      get() {
        throw new Error(`the snapshot would keep the build's ${what}: a module reads it as it is evaluated`);
      },
    });
    restore.push(() => (own === undefined ? delete object[key] : Object.defineProperty(object, key, own)));
  };
  for (const key of ['env', 'argv', 'execArgv', 'pid', 'ppid', 'title', 'stdin', 'stdout', 'stderr']) refuse(process, key, `process.${key}`);
  for (const key of ['cwd', 'umask', 'getuid', 'geteuid', 'getgid', 'getegid', 'hrtime', 'uptime', 'on', 'once', 'addListener', 'prependListener', 'prependOnceListener']) refuse(process, key, `process.${key}()`);
  refuse(Date, 'now', 'clock (Date.now)');
  refuse(Math, 'random', 'random numbers (Math.random)');
  for (const key of ['crypto', 'performance', 'setTimeout', 'setInterval', 'setImmediate']) refuse(globalThis, key, key);
  const { startupSnapshot } = __snapshotBuiltinRequire('node:v8');
  startupSnapshot.addSerializeCallback(() => {
    for (const undo of restore.reverse()) undo();
    __snapshotBuilding = false;
  });
  // import.meta.url, for the modules that find files beside themselves: the bundle's own place,
  // which bin/swarmpay passes as the script, as Node's argv[1] of any script, and through
  // symlinks as the kernel does (a path through a linked folder's `..` is elsewhere, and Node's
  // own realpath takes the `..` before the link).
  let moduleUrl;
  Object.defineProperty(globalThis, '__snapshotModuleUrl', {
    get() {
      if (moduleUrl === undefined) throw new Error("the snapshot would keep the build's import.meta.url: a module reads it as it is evaluated");
      return moduleUrl;
    },
  });
  startupSnapshot.addDeserializeCallback(() => {
    moduleUrl = process.getBuiltinModule('node:url').pathToFileURL(process.getBuiltinModule('node:fs').realpathSync.native(process.argv[1])).href;
  });
})();
