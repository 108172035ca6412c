// bench --mode compress (src/bench/compress.ts): per-stage figures from the pipeline's stage hook, the peak-memory
// reading, and the stage hook of the run ledger. The real pipeline run is covered by test/compress.test.ts; here a
// stand-in runner allocates known amounts so the memory figures can be checked (no timings are asserted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchCompress, peakRssBytes, resetPeakRss } from '../src/bench/compress.ts';
import { StageLedger } from '../src/pipeline/stages.ts';
import { silentLogger } from '../src/engine/runtime.ts';

test('benchCompress: one figure per stage in order, a stage that allocates 200 MiB peaks above it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mope-bc-'));
  try {
    let keep: Uint8Array | null = null;
    const r = await benchCompress(
      { geometry: 'tiny', calib: 4, steps: 1, batch: 2, evalLimit: 4, ffnGroupSize: 8, seed: 0, out: dir },
      async (a) => {
        assert.ok(existsSync(join(a.model, 'model.safetensors')));
        assert.equal(a.keepLayers, 1); // tiny: 2 vision layers, at least 1 kept
        for (const [name, mib] of [
          ['small', 1],
          ['big', 200],
        ] as const) {
          a.onStage(name, 'start');
          keep = new Uint8Array(mib * 2 ** 20).fill(1);
          a.onStage(name, 'end');
        }
      },
    );
    assert.deepEqual(
      r.stages.map((s) => s.name),
      ['small', 'big'],
    );
    const big = r.stages[1]!;
    assert.ok(big.peak_rss_mib >= 200, JSON.stringify(r.stages));
    assert.ok(r.peak_rss_mib >= big.peak_rss_mib);
    if (resetPeakRss()) assert.ok(r.stages[0]!.peak_rss_mib < big.peak_rss_mib, JSON.stringify(r.stages));
    assert.equal(r.calib_pairs, 4);
    assert.ok(keep !== null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('peakRssBytes is at least the current RSS', () => {
  assert.ok(peakRssBytes() >= process.memoryUsage.rss() * 0.9);
});

test('StageLedger tells stages that run (start, end) and not those done earlier', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mope-ledger-'));
  try {
    const seen: string[] = [];
    const hook = (n: string, p: string) => seen.push(`${n}:${p}`);
    const a = new StageLedger(dir, { x: 1 }, ['one', 'two'], silentLogger, false, hook);
    await a.run('one', () => ({}));
    const b = new StageLedger(dir, { x: 1 }, ['one', 'two'], silentLogger, false, hook);
    await b.run('one', () => ({}));
    await b.run('two', () => ({}));
    assert.deepEqual(seen, ['one:start', 'one:end', 'two:start', 'two:end']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
