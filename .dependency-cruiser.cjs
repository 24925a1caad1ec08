/**
 * The layers of swarmpay (DESIGN.md, issue 14), checked by dependency-cruiser on every `npm test`
 * (`npm run layers`). Top to bottom:
 *
 *   cli/, demo/, bench/, index.ts   clients of the public API
 *   api/                            the public library API
 *   channel/, escrow/               the protocols
 *   wallet/, keystore/, peer/, chain/, tpm/
 *   bitcoin/
 *   util/, errors.ts
 *
 * A module may import its own layer and the layers below it, never one above. Type-only imports
 * count: `import type` from a layer above is still a dependency on it (tsPreCompilationDeps).
 */

/** The modules a program starts from: everything else in src/ must be reachable from one of them. */
const ENTRY_POINTS_LIST = [
  '^src/index\\.ts$', // the library (package.json exports, once the API is in)
  '^src/cli/main\\.ts$', // bin/swarmpay, as an ES module, imports dist/cli/main.js
  '^src/cli/snapshot\\.ts$', // npm run build bundles it into the start-up snapshot bin/swarmpay starts
  '^src/bench/run\\.ts$', // npm run bench: node dist/bench/run.js
  '^src/bench/link-sink\\.ts$', // spawned by path (not imported) from bench/run.ts
];
const ENTRY_POINTS = ENTRY_POINTS_LIST.join('|');

/** Ours, but outside the given folders and errors.ts: a pathNot for rules that list what a layer may use. */
const ours = (...folders) => `^src/(?:${folders.join('|')})/|^src/errors\\.ts$`;

module.exports = {
  forbidden: [
    // --- the layers ------------------------------------------------------------------------
    {
      name: 'not-to-cli',
      comment:
        'The CLI is the outermost shell (parse, prompt, call, print, exit): nothing below it may ' +
        'depend on it, or the library would drag in commander, prompts and process.exit.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'api-only-from-clients',
      comment:
        'src/api is the public API: only its clients (cli, demo, bench) and src/index.ts, which ' +
        're-exports it, may import it. A protocol or lower layer importing the API is a layer inversion.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(?:api|cli|demo|bench)/|^src/index\\.ts$' },
      to: { path: '^src/api/' },
    },
    {
      name: 'not-to-clients',
      comment:
        'demo and bench are clients of the API, like the CLI: no library module may depend on them ' +
        '(the CLI may run the demo story).',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(?:demo|bench|cli)/' },
      to: { path: '^src/(?:demo|bench)/' },
    },
    {
      name: 'channel-not-to-escrow',
      comment:
        'The two protocols are independent: what they share (fees, contract wallet, peer ' +
        'conversation) lives in a lower layer, not in one another.',
      severity: 'error',
      from: { path: '^src/channel/' },
      to: { path: '^src/escrow/' },
    },
    {
      name: 'escrow-not-to-channel',
      comment:
        'The two protocols are independent: what they share (fees, contract wallet, peer ' +
        'conversation) lives in a lower layer, not in one another.',
      severity: 'error',
      from: { path: '^src/escrow/' },
      to: { path: '^src/channel/' },
    },
    {
      name: 'wallet-not-to-protocols',
      comment:
        'The wallet is below the protocols: it hands them a ContractWallet and must know nothing ' +
        'of channels, escrows, the API or the CLI.',
      severity: 'error',
      from: { path: '^src/wallet/' },
      to: { path: '^src/(?:channel|escrow|api|cli|demo|bench)/' },
    },
    {
      name: 'keystore-only-tpm-bitcoin-util',
      comment:
        'The keystore seals secrets (with a passphrase or a TPM) and keeps journals: it may use ' +
        'tpm, bitcoin, util and errors, nothing of wallet, peer, chain or the protocols.',
      severity: 'error',
      from: { path: '^src/keystore/' },
      to: { path: '^src/', pathNot: ours('keystore', 'tpm', 'bitcoin', 'util') },
    },
    {
      name: 'chain-only-bitcoin-util',
      comment:
        'The chain backends (RPC, embedded node, fees, broadcast) speak Bitcoin and nothing else: ' +
        'they may use bitcoin, util and errors only.',
      severity: 'error',
      from: { path: '^src/chain/' },
      to: { path: '^src/', pathNot: ours('chain', 'bitcoin', 'util') },
    },
    {
      name: 'tpm-peer-not-to-upper',
      comment:
        'tpm and peer are services below the keystore, the wallet and the protocols: they know ' +
        'nothing of them (tpm may use peer to enroll over a link).',
      severity: 'error',
      from: { path: '^src/(?:tpm|peer)/' },
      to: { path: '^src/(?:keystore|wallet|channel|escrow|api|cli|demo|bench)/' },
    },
    {
      name: 'peer-not-to-tpm',
      comment:
        'tpm enrolls over a peer link (tpm -> peer), so peer must not import tpm: the two ' +
        'folders would depend on each other.',
      severity: 'error',
      from: { path: '^src/peer/' },
      to: { path: '^src/tpm/' },
    },
    {
      name: 'bitcoin-only-util',
      comment:
        'bitcoin/ is pure Bitcoin (scripts, transactions, amounts, networks, outpoints): it may ' +
        'use util and errors only, so every layer above can build on it without a cycle.',
      severity: 'error',
      from: { path: '^src/bitcoin/' },
      to: { path: '^src/', pathNot: ours('bitcoin', 'util') },
    },
    {
      name: 'util-is-the-bottom',
      comment: 'util/ is the bottom layer: it may use errors.ts and nothing else of ours.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: ours('util') },
    },
    {
      name: 'errors-is-the-bottom',
      comment: 'errors.ts (SwarmpayError and its codes) is imported by every layer: it imports none.',
      severity: 'error',
      from: { path: '^src/errors\\.ts$' },
      to: { path: '^src/' },
    },

    // --- the graph as a whole --------------------------------------------------------------
    {
      name: 'no-circular',
      comment:
        'No module may depend on itself through others (type-only imports included): a cycle ' +
        'makes load order matter and the layers meaningless.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-test',
      comment: 'Code in src/ (what ships in dist/) must not import tests or their helpers.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/|\\.(?:test|spec)\\.[cm]?[jt]s$' },
    },
    {
      name: 'not-to-dev-dep',
      comment:
        'src/ ships: it must not import a devDependency (jest, fast-check, ...), which npm ci ' +
        '--omit=dev would not install.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: ['node_modules/@types/'] },
    },
    {
      name: 'not-to-unresolvable',
      comment:
        'Every import must resolve: an import this check cannot follow (a wrong .js suffix, a ' +
        'missing file) would also hide its layer from the rules above.',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-orphans',
      comment: 'A module in src/ that imports nothing and that nothing imports is dead code.',
      severity: 'error',
      from: { orphan: true, path: '^src/', pathNot: ENTRY_POINTS },
      to: {},
    },
    {
      name: 'no-unreachable',
      comment:
        'Every module in src/ must be reachable from an entry point (the library, the CLI, the ' +
        'bench); one that only tests import, or nothing, is dead code: remove it or use it.',
      severity: 'error',
      from: { path: ENTRY_POINTS },
      to: { path: '^src/', pathNot: ENTRY_POINTS, reachable: false },
    },
  ],
  options: {
    // Resolve as tsc does: NodeNext, imports written with .js that are .ts files.
    tsConfig: { fileName: 'tsconfig.json' },
    // Keep type-only imports in the graph: a type import is still a layer dependency.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    // No includeOnly: it would drop an import that does not resolve (and one into test/) before
    // not-to-unresolvable and not-to-test could see it. Only src/ is cruised; tests are free.
  },
};
