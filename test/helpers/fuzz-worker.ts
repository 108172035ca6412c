// Fuzz worker: runs many CLI invocations in one process through src/cli/main.ts (what bin/mope-clip.mjs calls),
// with stdout/stderr captured and the environment set per case. Usage: fuzz-worker.ts CASES.json OUT.jsonl
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { main } from '../../src/cli/main.ts';
import type { FuzzCase } from './fuzz-cases.ts';

const [casesFile, outFile] = process.argv.slice(2) as [string, string];
const cases = JSON.parse(readFileSync(casesFile, 'utf8')) as FuzzCase[];
writeFileSync(outFile, '');
let current = '';
let stray = '';
process.on('uncaughtException', (e) => {
  stray += `uncaught in ${current}: ${e?.stack ?? e}\n`;
});
process.on('unhandledRejection', (e) => {
  stray += `unhandled rejection in ${current}: ${(e as Error)?.stack ?? e}\n`;
});

const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
for (const c of cases) {
  current = c.id;
  let out = '',
    err = '';
  process.stdout.write = ((s: string | Uint8Array) => {
    out += typeof s === 'string' ? s : Buffer.from(s).toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    err += typeof s === 'string' ? s : Buffer.from(s).toString();
    return true;
  }) as typeof process.stderr.write;
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(c.env ?? {})) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const t0 = Date.now();
  let code: number;
  try {
    code = await main(c.args);
  } catch (e) {
    code = -1;
    err += `main threw: ${(e as Error)?.stack ?? e}`;
  }
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.stdout.write = realOut;
  process.stderr.write = realErr;
  // Let stray async work of this case surface before the next one starts.
  await new Promise((r) => setImmediate(r));
  if (stray) {
    err += stray;
    stray = '';
    code = -1;
  }
  appendFileSync(
    outFile,
    JSON.stringify({
      id: c.id,
      code,
      stdout: out.slice(0, 20000),
      stdoutLen: out.length,
      stderr: err.slice(0, 4000),
      ms: Date.now() - t0,
      rss: process.memoryUsage().rss,
    }) + '\n',
  );
}
process.exit(0);
