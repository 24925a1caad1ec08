#!/usr/bin/env node
// The CLI on ES modules, where bin/swarmpay has no start-up snapshot for this Node: the bundle
// npm run build makes (dist/bundle/) when it is newer than tsc's output, else tsc's output itself
// (dist/cli/main.js), so that a plain tsc build is never shadowed by an old bundle.
import { statSync } from 'node:fs';

const mtime = (file) => statSync(new URL(file, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundled = mtime('../dist/bundle/main.js') >= mtime('../dist/cli/main.js');
const { runAndExit } = await import(bundled ? '../dist/bundle/main.js' : '../dist/cli/main.js');
await runAndExit(process.argv);
