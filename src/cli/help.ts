/**
 * Help as an operator reads it: every command's help lists the global options, marks
 * required options, ends with examples, and `help CMD SUB` shows SUB's help; a usage
 * error names the help of the command it happened in.
 */
import { Command, CommanderError, Help, type Option } from 'commander';
import { SwarmpayError } from '../errors.js';

/** Examples shown at the end of each command's help, by command path ("" is the program). */
export const EXAMPLES: Record<string, string[]> = {
  '': ['swarmpay node start', 'swarmpay wallet create --mnemonic-file alice.words --passphrase-file alice.pass', 'swarmpay help wallet send'],
  info: ['swarmpay info', 'gpg -d alice.pass.gpg | swarmpay info --passphrase-file -', 'swarmpay --network signet info --json'],
  node: ['swarmpay node start', 'swarmpay node status --json'],
  'node start': ['swarmpay node start', 'swarmpay node start --impl bitcoind', 'swarmpay node start --share-group swarm'],
  'node stop': ['swarmpay node stop'],
  'node status': ['swarmpay node status', 'swarmpay node status --json'],
  'node credentials': ['swarmpay node credentials --out alice-node.cookie', 'swarmpay node credentials --out /srv/swarm/node.cookie --share-group swarm'],
  'node mine': ['swarmpay node mine 1', 'swarmpay node mine 6 --to "$(swarmpay wallet address)"'],
  wallet: ['swarmpay wallet create --mnemonic-file alice.words --passphrase-file alice.pass', 'swarmpay wallet balance'],
  'wallet create': [
    'swarmpay wallet create --mnemonic-file alice.words --passphrase-file alice.pass',
    'swarmpay wallet create --restore --mnemonic-file alice.words --passphrase-file alice.pass',
    'swarmpay wallet create --mnemonic-file alice.words --passphrase-file alice.pass --bip39-passphrase',
  ],
  'wallet address': ['swarmpay wallet address', 'swarmpay wallet address --new --json'],
  'wallet utxos': ['swarmpay wallet utxos', 'swarmpay wallet utxos --json'],
  'wallet history': ['swarmpay wallet history --limit 20', 'swarmpay wallet history --passphrase-file alice.pass --json'],
  'wallet balance': ['swarmpay wallet balance', 'swarmpay --network signet --json wallet balance'],
  'wallet info': ['swarmpay wallet info', 'swarmpay wallet info --json'],
  'wallet send': [
    'swarmpay wallet send bcrt1q… 250000 --passphrase-file alice.pass',
    'swarmpay wallet send bcrt1q… 250000 --subtract-fee',
    'swarmpay wallet send bcrt1q… --max --fee-rate auto',
    'gpg -d alice.pass.gpg | swarmpay wallet send bcrt1q… 250000 --passphrase-file - --yes',
    'swarmpay --network signet wallet send tb1q… 50000 --fee-rate 2.5 --wait 1 --timeout 7200 --yes --json',
  ],
  'wallet bump': ['swarmpay wallet bump 5c1e… --fee-rate 3.75', 'swarmpay wallet bump 5c1e… --fee-rate auto --passphrase-file alice.pass'],
  tpm: ['swarmpay tpm provision --passphrase-file alice.pass', 'swarmpay tpm status'],
  'tpm provision': ['swarmpay tpm provision --passphrase-file alice.pass', 'swarmpay tpm provision --pcrs 7,16 --force'],
  'tpm status': ['swarmpay tpm status', 'swarmpay tpm status --json'],
  'tpm attest': ['swarmpay tpm attest --nonce "$(openssl rand -hex 32)" --out quote.json', 'swarmpay tpm attest --nonce 5f3a…c1 --pcrs 7,16'],
  'tpm verify': ['swarmpay tpm verify quote.json --nonce 5f3a…c1 --ak ak.pem', 'swarmpay tpm verify quote.json --nonce 5f3a…c1 --enrolled --expect-pcrs pcrs.json'],
  'tpm enroll': ['swarmpay tpm enroll --peer 192.0.2.7:9736 --tpm-ca ek-ca.pem --label "Bob\'s box"', 'swarmpay tpm enroll --peer-cmd "ssh bob swarmpay escrow serve --stdio" --tpm-ca ek-ca.pem'],
  'tpm trust': ['swarmpay tpm trust list', 'swarmpay tpm trust remove 000b…'],
  'tpm trust list': ['swarmpay tpm trust list', 'swarmpay tpm trust list --json'],
  'tpm trust remove': ['swarmpay tpm trust remove 000b…'],
  channel: ['swarmpay channel serve --listen 127.0.0.1:9735', 'swarmpay channel open --peer 127.0.0.1:9735 --capacity 100000 --wait'],
  'channel serve': ['swarmpay channel serve --listen 0.0.0.0:9735', 'swarmpay channel serve --stdio --min-capacity 50000'],
  'channel open': ['swarmpay channel open --peer 192.0.2.7:9735 --peer-key 3b9f… --capacity 100000 --wait --timeout 1800', 'swarmpay channel open --resume 9c1e…'],
  'channel pay': ['swarmpay channel pay 9c1e… 10', 'swarmpay channel pay 9c1e… 1 --count 1000', 'swarmpay channel pay --batch payments.jsonl --json'],
  'channel close': ['swarmpay channel close 9c1e…'],
  'channel bump': ['swarmpay channel bump 9c1e… --fee-rate 20'],
  'channel refund': ['swarmpay channel refund 9c1e…', 'swarmpay channel refund 9c1e… --fee-rate 5'],
  'channel list': ['swarmpay channel list', 'swarmpay channel list --json'],
  'channel recover': ['swarmpay channel recover'],
  'channel show': ['swarmpay channel show 9c1e…', 'swarmpay channel show 9c1e… --json'],
  escrow: ['swarmpay escrow offer --item song.flac --price 20000 --out offer.json', 'swarmpay escrow accept offer.json --max-price 25000'],
  'escrow offer': ['swarmpay escrow offer --item song.flac --price 20000 --out offer.json', 'swarmpay escrow offer --item song.flac --price 20000 --attest --pcrs 7,16'],
  'escrow accept': ['swarmpay escrow accept offer.json --max-price 25000 --out acceptance.json', 'swarmpay escrow accept --peer 192.0.2.7:9736 --require-attestation --enrolled'],
  'escrow claim': ['swarmpay escrow claim 4d2a… --acceptance acceptance.json --wait', 'swarmpay escrow claim 4d2a… --out song.flac --wait'],
  'escrow refund': ['swarmpay escrow refund 4d2a…'],
  'escrow serve': ['swarmpay escrow serve --listen 0.0.0.0:9736', 'swarmpay escrow serve --stdio'],
  'escrow list': ['swarmpay escrow list', 'swarmpay escrow list --json'],
  'escrow show': ['swarmpay escrow show 4d2a…', 'swarmpay escrow show 4d2a… --json'],
  demo: ['swarmpay demo', 'swarmpay demo --keep'],
  completion: ['source <(swarmpay completion bash)', 'swarmpay completion zsh > "${fpath[1]}/_swarmpay"', 'swarmpay completion fish > ~/.config/fish/completions/swarmpay.fish'],
};

/** Commander's ways of ending a parse that are not errors of the user's. */
const NOT_USAGE = new Set(['commander.help', 'commander.helpDisplayed', 'commander.version', 'commander.executeSubCommandAsync']);

/** Set on the program before any command is added: commander hands this on to each. */
export function configureHelp(program: Command): void {
  program.configureHelp({
    showGlobalOptions: true,
    optionDescription(this: Help, option: Option): string {
      const text = Help.prototype.optionDescription.call(this, option);
      return option.mandatory ? `${text} (required)` : text;
    },
  });
}

/** A command's words after "swarmpay". */
export function commandPath(cmd: Command): string[] {
  const path: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) path.unshift(c.name());
  return path;
}

/**
 * Commander's own help command shows only the first word's help (`help wallet send` gave
 * the wallet's); this one walks down every word.
 */
function addHelpCommand(group: Command): void {
  group.helpCommand(false);
  group
    .command('help')
    .description('display help for command')
    .argument('[command...]', 'the command, one word a level (e.g. wallet send)')
    .action((words: string[]) => {
      let target = group;
      for (const word of words) {
        const sub = target.commands.find((c) => c.name() === word || c.aliases().includes(word));
        if (!sub) throw new SwarmpayError('USAGE', `unknown command '${[...commandPath(target), word].join(' ')}'`, { hint: `see \`${['swarmpay', ...commandPath(target)].join(' ')} --help\`` });
        target = sub;
      }
      target.outputHelp();
    });
}

/** After every command is registered: help commands, examples, and usage errors that name their command's help. */
export function finishHelp(program: Command): void {
  const walk = (cmd: Command): void => {
    if (cmd.commands.length > 0) addHelpCommand(cmd);
    const path = commandPath(cmd);
    const examples = EXAMPLES[path.join(' ')];
    if (examples) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
    const hint = `see \`${['swarmpay', ...path].join(' ')} --help\``;
    cmd.exitOverride((err: CommanderError) => {
      if (err.exitCode === 0 || NOT_USAGE.has(err.code)) throw err;
      throw new SwarmpayError('USAGE', err.message.replace(/^error: /, ''), { hint });
    });
    for (const sub of cmd.commands) walk(sub);
  };
  walk(program);
}
