/**
 * A peer command's stderr (`--peer-cmd "ssh bob@host swarmpay channel serve --stdio"`) as
 * whole lines, each with the peer's name, for the caller to show apart from its own: the
 * remote's log and errors mixed unmarked into ours read as if we had said them.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** Receives each line a peer command writes on its stderr (no newline), and the peer's name. */
export type PeerStderr = (line: string, peer: string) => void;

/**
 * The longest line held: a command that writes without a newline has its text cut into
 * lines of this many characters, so that what it sends costs us at most this much.
 */
export const MAX_STDERR_LINE = 4096;

/** ssh's options that take an argument (`-p 22`, `-i key`): the word after them is not the host. */
const SSH_ARG_OPTIONS = 'BbcDEeFIiJLlmOoPpQRSWw';

/** The words of a /bin/sh command line, quotes and backslashes undone (no expansions: a name, not a run). */
function shellWords(command: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (c === '\\' && i + 1 < command.length && (quote === null || '"\\$`'.includes(command[i + 1]!))) {
      word = (word ?? '') + command[++i];
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/**
 * The name a peer command's lines go by: for ssh the destination (`ssh -p 2222 bob@host …`
 * → `bob@host`), else the name of the program it runs (`/usr/bin/swarmpay …` → `swarmpay`);
 * `peer` when neither can be told.
 */
export function commandName(command: string): string {
  const words = shellWords(command);
  // Leading assignments (`FOO=1 ssh …`) set the environment; the program comes after them.
  while (words.length > 1 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) words.shift();
  const program = path.basename(words[0] ?? '');
  if (program !== 'ssh') return program || 'peer';
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') return words[i + 1] ?? 'ssh';
    if (!w.startsWith('-') || w === '-') return w;
    // In a cluster (`-vp 22`) the first option that takes an argument takes the rest of the word, or the next one.
    const at = [...w.slice(1)].findIndex((c) => SSH_ARG_OPTIONS.includes(c));
    if (at === w.length - 2) i++;
  }
  return 'ssh';
}

/**
 * Calls `onLine` for each line of `stream` (UTF-8; `\n` or `\r\n` ends one), a line past
 * `maxChars` cut into pieces as it comes, and the last line even without its newline
 * when the stream ends.
 */
export function readLines(stream: Readable, onLine: (line: string) => void, maxChars = MAX_STDERR_LINE): void {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const cut = (text: string): string => {
    while (text.length >= maxChars) {
      // Never between the two halves of a surrogate pair.
      const at = /[\ud800-\udbff]/.test(text[maxChars - 1]!) ? maxChars - 1 : maxChars;
      onLine(text.slice(0, at));
      text = text.slice(at);
    }
    return text;
  };
  const take = (text: string): void => {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      const line = partial + text.slice(from, nl);
      partial = '';
      from = nl + 1;
      const rest = cut(line.endsWith('\r') ? line.slice(0, -1) : line);
      if (rest !== '' || line === '' || line === '\r') onLine(rest);
    }
    partial = cut(partial + text.slice(from));
  };
  stream.on('data', (chunk: Buffer) => take(decoder.write(chunk)));
  stream.once('end', () => {
    take(decoder.end());
    if (partial !== '' && partial !== '\r') onLine(partial.endsWith('\r') ? partial.slice(0, -1) : partial);
    partial = '';
  });
  // A pipe that breaks ends the lines; the link reports what happened to the command.
  stream.on('error', () => undefined);
}
