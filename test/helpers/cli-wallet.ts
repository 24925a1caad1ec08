/** A wallet made from the command line in a test node's own datadir, which reaches that node as it is. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { swarmpay } from './cli.js';
import { startTestNode, type TestNode } from './node.js';
import { tempDir } from './tmp.js';

export interface CliWallet {
  node: TestNode;
  /** Files a test writes: the passphrase, the mnemonic. */
  tmp: ReturnType<typeof tempDir>;
  datadir: string;
  passFile: string;
}

/** A real btcd and a wallet created on it by `swarmpay wallet create` (stop the node and remove tmp in afterAll). */
export async function startCliWallet(): Promise<CliWallet> {
  const node = await startTestNode();
  const tmp = tempDir();
  const passFile = path.join(tmp.dir, 'pass');
  writeFileSync(passFile, 'a good long passphrase\n');
  const created = await swarmpay(['--datadir', node.datadir, 'wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'a.words'), '--passphrase-file', passFile]);
  if (created.code !== 0) throw new Error(`wallet create failed (exit ${created.code}): ${created.stdout}${created.stderr}`);
  return { node, tmp, datadir: node.datadir, passFile };
}
