// `mope-clip bench --mode deploy` on tiny dense and pruned checkpoints: every JSON field exists and is positive, the
// --vs comparison's ratios follow from the two models' figures (and, on hand-made figures, equal their definition),
// the table prints, bad input. No timing assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { countParameters } from '../src/io/checkpoint.ts';
import { gflops, imageMacs, textMacs } from '../src/model/flops.ts';
import {
  benchDeploy,
  compareBenches,
  formatDeployBench,
  PRECISIONS,
  TOWERS,
  type Comparison,
  type ModelBench,
} from '../src/bench/deploy.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 2, seed: 0, log: silentLogger };
const root = makeTempDir('mope-deploy-bench-');
test.after(() => removeDir(root));
const bin = join(dirname(dirname(fileURLToPath(import.meta.url))), 'bin', 'mope-clip.mjs');

const denseDir = join(root, 'dense');
const prunedDir = join(root, 'pruned');
mkdirSync(denseDir);
mkdirSync(prunedDir);
const dense = writeTinyCheckpoint(denseDir, { seed: 3 });
const pruned = writeTinyCheckpoint(prunedDir, {
  seed: 4,
  widths: { text: { heads: [2, 3], ffn: [32, 40] }, vision: { heads: [2, 1], ffn: [48, 30] } },
});

function positive(x: unknown, what: string): void {
  assert.equal(typeof x, 'number', `${what} is a number`);
  assert.ok(Number.isFinite(x as number) && (x as number) > 0, `${what} = ${x} is positive`);
}

function checkModel(m: ModelBench, model: typeof dense, dir: string): void {
  assert.equal(m.dir, dir);
  assert.equal(m.text_tokens, 77);
  assert.equal(m.params.total, countParameters(model));
  positive(m.params.vision, 'params.vision');
  positive(m.params.text, 'params.text');
  // Every parameter is in one tower except logit_scale.
  assert.equal(m.params.vision + m.params.text + 1, m.params.total);
  assert.equal(m.gflops.vision, gflops(imageMacs(model.config)));
  assert.equal(m.gflops.text, gflops(textMacs(model.config)));
  for (const t of TOWERS) {
    for (const p of PRECISIONS) {
      positive(m.file_mb[t][p], `file_mb.${t}.${p}`);
      positive(m.onnxruntime[t][p].latency_ms, `onnxruntime.${t}.${p}.latency_ms`);
      positive(m.onnxruntime[t][p].throughput_per_s, `onnxruntime.${t}.${p}.throughput_per_s`);
    }
    // int8 weights: the quantised file is smaller.
    assert.ok(m.file_mb[t].q8 < m.file_mb[t].fp32, `${t}: q8 file smaller than fp32`);
  }
  positive(m.engine.images_per_s, 'engine.images_per_s');
  positive(m.engine.texts_per_s, 'engine.texts_per_s');
}

/**
 * Every ratio of the comparison recomputed from the two entries (a = --model, b = --vs): FLOP and parameter ratios
 * a / b; latency speed-up a.latency / b.latency; throughput and engine speed-ups b.rate / a.rate; each speed-up
 * also over the tower's FLOP ratio. Same operations, so equal to the last bit; and every ratio finite and > 0.
 */
function assertComparison(c: Comparison, a: ModelBench, b: ModelBench): void {
  const eq = (got: number, want: number, what: string) => {
    positive(got, what);
    assert.equal(got, want, `${what}: ${got}, expected ${want} from the two entries`);
  };
  eq(c.param_ratio, a.params.total / b.params.total, 'param_ratio');
  for (const t of TOWERS) {
    eq(c.flop_ratio[t], a.gflops[t] / b.gflops[t], `flop_ratio.${t}`);
    for (const p of PRECISIONS) {
      const e = c.onnxruntime[t][p],
        x = a.onnxruntime[t][p],
        y = b.onnxruntime[t][p],
        at = `onnxruntime.${t}.${p}`;
      eq(e.latency_speedup, x.latency_ms / y.latency_ms, `${at}.latency_speedup`);
      eq(e.throughput_speedup, y.throughput_per_s / x.throughput_per_s, `${at}.throughput_speedup`);
      const f = c.flop_ratio[t];
      eq(e.latency_speedup_over_flop_ratio, e.latency_speedup / f, `${at}.latency_speedup_over_flop_ratio`);
      eq(e.throughput_speedup_over_flop_ratio, e.throughput_speedup / f, `${at}.throughput_speedup_over_flop_ratio`);
    }
    const rate = t === 'vision' ? 'images_per_s' : 'texts_per_s';
    eq(c.engine[t].speedup, b.engine[rate] / a.engine[rate], `engine.${t}.speedup`);
    eq(c.engine[t].speedup_over_flop_ratio, c.engine[t].speedup / c.flop_ratio[t], `engine.${t}.speedup/flop_ratio`);
  }
}

/** A hand-made benchmark entry: `speed` multiplies every rate and divides every latency. */
function entry(dir: string, gflops: { vision: number; text: number }, params: number, speed: number): ModelBench {
  const timing = (ms: number, perS: number) => ({ latency_ms: ms / speed, throughput_per_s: perS * speed });
  const tower = () => ({ fp32: timing(12, 50), q8: timing(6, 100) });
  return {
    dir,
    text_tokens: 77,
    params: { total: params, vision: params / 2, text: params / 2 - 1 },
    gflops,
    file_mb: { vision: { fp32: 2, q8: 0.5 }, text: { fp32: 1, q8: 0.25 } },
    onnxruntime: { vision: tower(), text: tower() },
    engine: { images_per_s: 10 * speed, texts_per_s: 40 * speed },
  };
}

test('compareBenches: speed-ups of --vs over --model, by definition, on hand-made figures', () => {
  // --vs runs 4× as fast on a model with 4× fewer vision FLOPs and 2× fewer text FLOPs; powers of two keep it exact.
  const a = entry('dense', { vision: 8, text: 6 }, 1000, 1),
    b = entry('pruned', { vision: 2, text: 3 }, 250, 4);
  const s = { latency_speedup: 4, throughput_speedup: 4 };
  const vision = { ...s, latency_speedup_over_flop_ratio: 1, throughput_speedup_over_flop_ratio: 1 };
  const text = { ...s, latency_speedup_over_flop_ratio: 2, throughput_speedup_over_flop_ratio: 2 };
  assert.deepEqual(compareBenches(a, b), {
    flop_ratio: { vision: 4, text: 2 },
    param_ratio: 4,
    onnxruntime: { vision: { fp32: vision, q8: vision }, text: { fp32: text, q8: text } },
    engine: { vision: { speedup: 4, speedup_over_flop_ratio: 1 }, text: { speedup: 4, speedup_over_flop_ratio: 2 } },
  });
  // The other way round every ratio is the reciprocal: a slower --vs gives speed-ups below 1.
  const back = compareBenches(b, a);
  assert.equal(back.onnxruntime.text.q8.latency_speedup, 0.25);
  assert.equal(back.onnxruntime.vision.fp32.throughput_speedup, 0.25);
  assert.equal(back.engine.text.speedup, 0.25);
  assertComparison(back, b, a);
  // Latency and throughput are read from their own fields: a --vs whose latency alone improves.
  const c = entry('latency-only', { vision: 8, text: 6 }, 1000, 1);
  c.onnxruntime.vision.fp32.latency_ms = 3;
  const r = compareBenches(a, c);
  assert.equal(r.onnxruntime.vision.fp32.latency_speedup, 4);
  assert.equal(r.onnxruntime.vision.fp32.throughput_speedup, 1);
  assert.equal(r.onnxruntime.vision.q8.latency_speedup, 1);
  assertComparison(r, a, c);
});

test('deploy bench: dense vs pruned, every field positive, ratios from the two models', async () => {
  const r = await benchDeploy({ model: denseDir, vs: prunedDir, batch: 4, threads: 2, runs: 3, iters: 1, rt });
  assert.equal(r.mode, 'deploy');
  assert.equal(r.batch, 4);
  assert.equal(r.threads, 2);
  checkModel(r.model, dense, denseDir);
  assert.ok(r.vs);
  checkModel(r.vs, pruned, prunedDir);
  const c = r.comparison!;
  assert.ok(c, 'comparison present with --vs');
  assertComparison(c, r.model, r.vs);
  assert.ok(c.flop_ratio.vision > 1 && c.flop_ratio.text > 1, 'the pruned model has fewer FLOPs');
  assert.ok(c.param_ratio > 1, 'the pruned model has fewer parameters');
  const table = formatDeployBench(r);
  assert.match(table, /\| vision \| fp32 \|/);
  assert.match(table, /\| text \| q8 \|/);
  assert.match(table, /measured speed-up ÷ FLOP ratio/);
});

test('deploy bench CLI: last line JSON; one model has no comparison; --model required', () => {
  const r = spawnSync(
    process.execPath,
    [
      bin,
      'bench',
      '--mode',
      'deploy',
      '--model',
      denseDir,
      '--batch',
      '2',
      '--runs',
      '2',
      '--iters',
      '1',
      '--threads',
      '2',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length > 1, 'a table before the JSON line');
  const j = JSON.parse(lines.at(-1)!);
  assert.equal(j.mode, 'deploy');
  assert.equal(j.threads, 2);
  positive(j.model.onnxruntime.vision.q8.latency_ms, 'vision q8 latency');
  assert.equal(j.vs, undefined);
  assert.equal(j.comparison, undefined);

  const bad = spawnSync(process.execPath, [bin, 'bench', '--mode', 'deploy'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--mode deploy needs --model/);
  const missing = spawnSync(process.execPath, [bin, 'bench', '--mode', 'deploy', '--model', join(root, 'nope')], {
    encoding: 'utf8',
  });
  assert.equal(missing.status, 1, missing.stderr);
  assert.match(missing.stderr, /nope/);
  const mode = spawnSync(process.execPath, [bin, 'bench', '--mode', 'fast'], { encoding: 'utf8' });
  assert.equal(mode.status, 1);
  assert.match(mode.stderr, /--mode: expected .*"deploy"/);
});
