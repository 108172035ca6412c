// Prints the fuzz suite's outcome table (family x outcome) and every contract violation; never fails.
// Usage: node --import tsx test/helpers/fuzz-report.ts [SEED] [COUNT]
// MOPE_FUZZ_ONLY=id,id,... runs only those cases; MOPE_FUZZ_TIMEOUT_MS sets the per-case timeout (default 30000).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCases, buildFixture, FAMILIES } from './fuzz-cases.ts';
import { BIN, classify, PASSING, runCases, table } from './fuzz-run.ts';

const seed = Number(process.argv[2] ?? 20261202);
const count = Number(process.argv[3] ?? 360);
const dir = mkdtempSync(join(tmpdir(), 'mope-fuzz-'));
const t0 = Date.now();
const fx = await buildFixture(dir, BIN);
const only = process.env.MOPE_FUZZ_ONLY?.split(',').filter(Boolean);
const cases = (await buildCases(fx, seed, count)).filter((c) => !only || only.includes(c.id));
const results = await runCases(cases, dir, { timeoutMs: Number(process.env.MOPE_FUZZ_TIMEOUT_MS ?? 30_000) });
console.log(`seed ${seed}, ${cases.length} cases, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
console.log(table(cases, results, FAMILIES));
for (const c of cases) {
  const r = results.get(c.id)!;
  const o = classify(c, r);
  if (only) console.log(`${c.id} [${o}] ${c.note}: exit ${r.code} ${r.ms} ms ${r.stderr.trim().split('\n')[0]}`);
  else if (!PASSING.has(o))
    console.log(
      `\n${c.id} [${o}] ${c.note}: exit ${r.code}${r.signal ? ` signal ${r.signal}` : ''} ${r.ms} ms\n  ${r.stderr.trim().split('\n').slice(0, 3).join('\n  ')}`,
    );
}
rmSync(dir, { recursive: true, force: true });
