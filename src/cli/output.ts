/**
 * All terminal output: results on stdout (human lines, or one JSON document with --json),
 * progress, warnings and errors on stderr, colour on stderr only and only on a TTY
 * without NO_COLOR.
 */
import { SwarmpayError } from '../errors.js';
import { MAX_MONEY } from '../bitcoin/amount.js';
import { EXIT_CODES } from './exit-codes.js';
import { colours, type Colours } from './colours.js';

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Compact JSON, one line (so streams of results stay one document a line), with bigints
 * as numbers while exact (every satoshi amount is), else strings of digits.
 */
function toJson(doc: unknown): string {
  return JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? (v <= MAX_MONEY && v >= -MAX_MONEY ? Number(v) : v.toString()) : v));
}

/** JSON lines held before a write. */
const LINES_BYTES = 64 * 1024;

/** Progress on a terminal is redrawn this often, for its running time. */
const PROGRESS_REDRAW_MS = 1000;
/** Progress anywhere else (a log, a pipe) is a line this often, the first at once: a wait shows it is alive without filling the log. */
const PROGRESS_LINE_MS = 10_000;

export class Output {
  readonly color: Colours;
  private progressShown = false;
  /** The progress under way: its latest message, since when, and the timer that shows it. */
  private progressRun: { msg: string; since: number; timer: NodeJS.Timeout } | null = null;
  private lines = '';
  private flushing = false;

  constructor(
    readonly json: boolean,
    private readonly io: Streams = { stdout: process.stdout, stderr: process.stderr },
  ) {
    const colour = !!io.stderr.isTTY && !('NO_COLOR' in process.env);
    this.color = colours(colour);
  }

  /** The command's result: `doc` as JSON, or the human lines. */
  result(doc: object, human: string[] | string): void {
    this.endProgress();
    if (this.json) this.io.stdout.write(toJson(doc) + '\n');
    else this.io.stdout.write((Array.isArray(human) ? human.join('\n') : human) + '\n');
  }

  /**
   * One compact JSON line on stdout: streams of results (per payment, a server's address).
   * Lines go out together at the end of each turn of the event loop (or every 64 KiB):
   * still as they come, but not one write each, which at a hundred thousand payments a
   * second would be the command's bottleneck.
   */
  jsonLine(doc: object): void {
    this.clearProgress();
    this.lines += toJson(doc) + '\n';
    if (this.lines.length >= LINES_BYTES) this.flush();
    else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes the JSON lines not yet written; everything else this prints does this first, to keep the order. */
  flush(): void {
    this.flushing = false;
    if (this.lines === '') return;
    this.io.stdout.write(this.lines);
    this.lines = '';
  }

  info(msg: string): void {
    if (this.json) return;
    this.note(msg);
  }

  /** A line on stderr that --json prints too: what a user must see even of a scripted run (the txid a wait is on). */
  note(msg: string): void {
    this.beforeLine();
    this.io.stderr.write(msg + '\n');
  }

  warn(msg: string): void {
    this.beforeLine();
    this.io.stderr.write(this.color.yellow(`warning: ${msg}`) + '\n');
  }

  /**
   * Progress on stderr (with --json too: stdout keeps its one document), with its running
   * time: on a terminal one line redrawn in place, every second and at each new message;
   * elsewhere the latest message as a line of its own, the first at once and then one
   * every 10 s, so that a log shows a wait that has nothing new to say is still alive. It
   * lasts until the result or error.
   */
  progress(msg: string): void {
    if (this.progressRun !== null) {
      this.progressRun.msg = msg;
      if (this.io.stderr.isTTY) this.drawProgress();
      return;
    }
    // Unref'd: a progress display never keeps the process alive.
    const timer = setInterval(() => this.drawProgress(), this.io.stderr.isTTY ? PROGRESS_REDRAW_MS : PROGRESS_LINE_MS).unref();
    this.progressRun = { msg, since: Date.now(), timer };
    this.drawProgress();
  }

  private drawProgress(): void {
    if (this.progressRun === null) return;
    const line = `${this.progressRun.msg} (${Math.round((Date.now() - this.progressRun.since) / 1000)} s)`;
    if (this.io.stderr.isTTY) {
      this.io.stderr.write(`\r\x1b[2K${this.color.dim(line)}`);
      this.progressShown = true;
    } else {
      this.io.stderr.write(line + '\n');
    }
  }

  private clearProgress(): void {
    if (this.progressShown) this.io.stderr.write('\r\x1b[2K');
    this.progressShown = false;
  }

  /** Before a line on stderr: the progress line makes way (redrawn below it), and the JSON lines given so far come first. */
  private beforeLine(): void {
    this.clearProgress();
    if (this.lines !== '') this.flush();
  }

  /** Before the result or error: the progress is over. */
  private endProgress(): void {
    if (this.progressRun !== null) clearInterval(this.progressRun.timer);
    this.progressRun = null;
    this.beforeLine();
  }

  /** Prints an error in the documented shape (README "Output and exit codes") and returns its exit code. */
  error(e: unknown): number {
    this.endProgress();
    const err =
      e instanceof SwarmpayError
        ? e
        : new SwarmpayError('INTERNAL', e instanceof Error ? (e.stack ?? e.message) : String(e), {
            hint: 'this is a bug in swarmpay; please report it with the command you ran and the text above',
          });
    if (this.json) {
      const body: Record<string, unknown> = { code: err.code, message: err.message };
      if (err.hint) body.hint = err.hint;
      if (err.details) body.details = err.details;
      this.io.stdout.write(toJson({ error: body }) + '\n');
    } else {
      this.io.stderr.write(this.color.red(`error: ${err.code}: ${err.message}`) + '\n');
      if (err.hint) this.io.stderr.write(`${err.hint}\n`);
    }
    return EXIT_CODES[err.code];
  }
}
