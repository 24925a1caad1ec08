/**
 * A peer command's stderr line as we show it: `[NAME] line` on our stderr. The line is the
 * remote's, so it may not drive our terminal: its colours are kept where ours are shown
 * (and reset at its end), every other control character and escape sequence is shown as
 * text (`^[`), so that no peer can move the cursor, retitle the window or overwrite a
 * prompt or warning of ours.
 */
import type { Colours } from './colours.js';

/** SGR sequences (`ESC [ … m`): colours and styles, nothing else. */
const SGR = /\x1b\[[0-9;]*m/g;
/**
 * C0 controls but tab, DEL, C1 controls, and the bidirectional formatting characters
 * (U+061C, U+200E-F, U+202A-E, U+2066-9), with which a line would show its text in another
 * order than it has ("Trojan Source").
 */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** SGR attributes a peer's line may set: reset, bold, dim, italic, underline, their ends, and colours. Not blink, reverse or conceal. */
const STYLES = new Set([0, 1, 2, 3, 4, 22, 23, 24, 39, 49]);
const isColour = (p: number) => (p >= 30 && p <= 37) || (p >= 40 && p <= 47) || (p >= 90 && p <= 97) || (p >= 100 && p <= 107);

const visible = (c: string): string => {
  const code = c.charCodeAt(0);
  if (code > 0xff) return `<U+${code.toString(16).toUpperCase().padStart(4, '0')}>`;
  return code < 0x20 ? `^${String.fromCharCode(code + 0x40)}` : code === 0x7f ? '^?' : `\\x${code.toString(16)}`;
};

/** Whether an SGR sequence only colours and styles text (38/48 with a palette or RGB colour included). */
function onlyColours(sgr: string): boolean {
  const ps = sgr.slice(2, -1).split(';').map((p) => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    if (p === 38 || p === 48) {
      const n = ps[i + 1] === 5 ? 2 : ps[i + 1] === 2 ? 4 : -1;
      if (n < 0 || ps.slice(i + 1, i + 1 + n).length !== n || ps.slice(i + 2, i + 1 + n).some((v) => v > 255)) return false;
      i += n;
    } else if (!STYLES.has(p) && !isColour(p)) return false;
  }
  return true;
}

export function peerStderrLine(color: Colours, peer: string, line: string): string {
  const prefix = color.dim(`[${peer.replace(CONTROL, visible)}]`);
  if (!color.on) return `${prefix} ${line.replace(SGR, '').replace(CONTROL, visible)}`;
  // Escape characters outside the colour sequences kept become text; the kept ones stay whole.
  const parts = line.split(SGR);
  // A sequence that would blink, reverse or hide text is dropped: the rest of the line shows as it is.
  const colours = (line.match(SGR) ?? []).map((c) => (onlyColours(c) ? c : ''));
  const text = parts.map((p, i) => p.replace(CONTROL, visible) + (colours[i] ?? '')).join('');
  return `${prefix} ${text}${colours.some((c) => c !== '') ? '\x1b[0m' : ''}`;
}
