/**
 * The README's "Use it from TypeScript" program, as printed there: compiled by tsc
 * against the package as a user installs it (`swarmpay` resolved through package.json's
 * exports and types, not the sources), then run by node: a real btcd, two wallets, a
 * channel, 1,000 payments through the API, no swarmpay process.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);

/** The first ```ts block after the heading: the program the README shows. */
function readmeExample(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('## Use it from TypeScript');
  expect(at).toBeGreaterThan(0);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (m === null || m[1] === undefined) throw new Error('the README has no ```ts block under "Use it from TypeScript"');
  return m[1];
}

/** A project beside the repository that depends on swarmpay as an installed package would. */
function userProject(dir: string, program: string): void {
  mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(ROOT, path.join(dir, 'node_modules', 'swarmpay'));
  symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], outDir: 'out' }, files: ['example.ts'] }));
  writeFileSync(path.join(dir, 'example.ts'), program);
}

describe('the README example', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir();
  });
  afterAll(() => tmp.remove());

  test('compiles against the package and pays 1,000 payments on a channel through the API', async () => {
    const project = path.join(tmp.dir, 'project');
    mkdirSync(project);
    userProject(project, readmeExample());
    await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project });
    // TMPDIR inside this test's folder: whatever the program leaves running, the run's teardown finds.
    const { stdout } = await run(process.execPath, [path.join(project, 'out', 'example.js')], { cwd: project, env: { ...process.env, TMPDIR: tmp.dir }, timeout: 240_000 });
    expect(stdout).toContain('1000 payments acknowledged, 10000 sats');
    expect(stdout).toMatch(/refused: [A-Z_]+, 0 acknowledged/);
    expect(stdout).toMatch(/closing transaction [0-9a-f]{64}/);
  }, 300_000);
});
