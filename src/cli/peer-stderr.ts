/**
 * A peer command's stderr line as we show it: `[NAME] line` on our stderr. The line is the
 * remote's, so it may not drive our terminal: its colours are kept where ours are shown
 * (and reset at its end), every other control character and escape sequence is shown as
 * text (`^[`), so that no peer can move the cursor, retitle the window or overwrite a
 * prompt or warning of ours.
 */
import type { ChalkInstance } from 'chalk';

/** SGR sequences (`ESC [ … m`): colours and styles, nothing else. */
const SGR = /\x1b\[[0-9;]*m/g;
/** C0 controls but tab, DEL, and C1 controls. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

const visible = (c: string): string => {
  const code = c.charCodeAt(0);
  return code < 0x20 ? `^${String.fromCharCode(code + 0x40)}` : code === 0x7f ? '^?' : `\\x${code.toString(16)}`;
};

export function peerStderrLine(color: ChalkInstance, peer: string, line: string): string {
  const prefix = color.dim(`[${peer.replace(CONTROL, visible)}]`);
  if (color.level === 0) return `${prefix} ${line.replace(SGR, '').replace(CONTROL, visible)}`;
  // Escape characters outside the colour sequences kept become text; the kept ones stay whole.
  const parts = line.split(SGR);
  const colours = line.match(SGR) ?? [];
  const text = parts.map((p, i) => p.replace(CONTROL, visible) + (colours[i] ?? '')).join('');
  return `${prefix} ${text}${colours.length > 0 ? '\x1b[0m' : ''}`;
}
