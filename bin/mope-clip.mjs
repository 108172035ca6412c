#!/usr/bin/env node
// mope-clip command-line entry: registers the TypeScript loader (tsx) and runs src/cli/main.ts.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

register();
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { main } = await import(join(root, 'src', 'cli', 'main.ts'));
process.exitCode = await main(process.argv.slice(2));
