/**
 * The few styles the CLI shows on a terminal, with Node's own util.styleText (the codes chalk
 * gave at its 16-colour level). chalk decided its colour support from the environment and the
 * terminal as it loaded, which a start-up snapshot would keep from its build: here the caller
 * decides, when it runs.
 */
import { styleText } from 'node:util';

export interface Colours {
  /** Whether these colour anything: off, each style gives its text back as it is. */
  readonly on: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
}

export function colours(on: boolean): Colours {
  // Node 22's styleText would also ask whether stdout is a terminal; the caller has decided.
  const style = (format: 'bold' | 'dim' | 'red' | 'yellow') => (text: string) => (on ? styleText(format, text, { validateStream: false }) : text);
  return { on, bold: style('bold'), dim: style('dim'), red: style('red'), yellow: style('yellow') };
}
