// Seeded fuzz suite through the real CLI (src/cli/main.ts in-process workers, plus bin/mope-clip.mjs in its own process
// for cases that could hang or allocate): mutated safetensors, config, tokenizer files, images, data files and
// flags. Every case must end in exit 0 (with sane output), 1 (user error) or 2 (usage error); a known-bad input
// must not succeed; no exit 3, signal, hang or stack trace.
// MOPE_FUZZ_SEED (default 20261202) and MOPE_FUZZ_COUNT (default 300) choose the cases; MOPE_FUZZ_CASE=ID (e.g.
// flags-7) reruns one case alone. test/helpers/fuzz-report.ts prints the outcome table by family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCases, buildFixture } from './helpers/fuzz-cases.ts';
import { BIN, classify, PASSING, runCases } from './helpers/fuzz-run.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

const SEED = Number(process.env.MOPE_FUZZ_SEED ?? 20261202);
const COUNT = Number(process.env.MOPE_FUZZ_COUNT ?? 300);
const ONLY = process.env.MOPE_FUZZ_CASE;

test(`fuzz: ${COUNT} seeded bad inputs (seed ${SEED}) keep the exit-code contract`, { timeout: 600_000 }, async (t) => {
  const dir = makeTempDir('mope-fuzz-');
  t.after(() => removeDir(dir));
  const fx = await buildFixture(dir, BIN);
  let cases = await buildCases(fx, SEED, COUNT);
  assert.equal(cases.length, COUNT);
  if (ONLY) {
    cases = cases.filter((c) => c.id === ONLY);
    assert.equal(cases.length, 1, `MOPE_FUZZ_CASE=${ONLY}: no such case for seed ${SEED} and count ${COUNT}`);
  }
  // Six of the cases that used to hang or allocate run through bin/mope-clip.mjs in their own process; the rest,
  // those included, in two in-process workers over src/cli/main.ts (the cost of one node start per case is too high).
  const results = await runCases(cases, dir, { workers: 2, timeoutMs: 30_000, spawn: 6 });
  const failures: string[] = [];
  for (const c of cases) {
    const r = results.get(c.id)!;
    const o = classify(c, r);
    if (!PASSING.has(o)) {
      failures.push(
        `${c.id} [${o}] ${c.note}: exit ${r.code}${r.signal ? ` signal ${r.signal}` : ''} in ${r.ms} ms; mope-clip ${c.args.join(' ')}\n` +
          `    ${r.stderr.trim().split('\n').slice(0, 3).join('\n    ')}\n` +
          `    rerun alone: MOPE_FUZZ_SEED=${SEED} MOPE_FUZZ_COUNT=${COUNT} MOPE_FUZZ_CASE=${c.id} node --import tsx --test test/fuzz.test.ts`,
      );
    }
  }
  assert.equal(
    failures.length,
    0,
    `seed ${SEED}: ${failures.length} of ${cases.length} cases break the contract:\n${failures.join('\n')}`,
  );
});
