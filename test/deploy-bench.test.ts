// `mope-clip bench --mode deploy` on tiny dense and pruned checkpoints: every JSON field exists and is positive, the
// --vs comparison's ratios follow from the two models' figures, the table prints, bad input. No timing assertions.
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
import { benchDeploy, formatDeployBench, PRECISIONS, TOWERS, type ModelBench } from '../src/bench/deploy.ts';

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
  seed: 4, widths: { text: { heads: [2, 3], ffn: [32, 40] }, vision: { heads: [2, 1], ffn: [48, 30] } },
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
  assert.ok(Math.abs(c.flop_ratio.vision - r.model.gflops.vision / r.vs.gflops.vision) < 1e-12);
  assert.ok(c.flop_ratio.vision > 1 && c.flop_ratio.text > 1, 'the pruned model has fewer FLOPs');
  assert.ok(Math.abs(c.param_ratio - r.model.params.total / r.vs.params.total) < 1e-12);
  for (const t of TOWERS) {
    for (const p of PRECISIONS) {
      const e = c.onnxruntime[t][p];
      const a = r.model.onnxruntime[t][p], b = r.vs.onnxruntime[t][p];
      assert.ok(Math.abs(e.latency_speedup - a.latency_ms / b.latency_ms) < 1e-9);
      assert.ok(Math.abs(e.throughput_speedup - b.throughput_per_s / a.throughput_per_s) < 1e-9);
      assert.ok(Math.abs(e.latency_speedup_over_flop_ratio - e.latency_speedup / c.flop_ratio[t]) < 1e-9);
      assert.ok(Math.abs(e.throughput_speedup_over_flop_ratio - e.throughput_speedup / c.flop_ratio[t]) < 1e-9);
    }
    positive(c.engine[t].speedup, `engine ${t} speedup`);
    assert.ok(Math.abs(c.engine[t].speedup_over_flop_ratio - c.engine[t].speedup / c.flop_ratio[t]) < 1e-9);
  }
  const table = formatDeployBench(r);
  assert.match(table, /\| vision \| fp32 \|/);
  assert.match(table, /\| text \| q8 \|/);
  assert.match(table, /measured speed-up ÷ FLOP ratio/);
});

test('deploy bench CLI: last line JSON; one model has no comparison; --model required', () => {
  const r = spawnSync(process.execPath, [bin, 'bench', '--mode', 'deploy', '--model', denseDir, '--batch', '2', '--runs', '2', '--iters', '1', '--threads', '2'], { encoding: 'utf8' });
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
  const missing = spawnSync(process.execPath, [bin, 'bench', '--mode', 'deploy', '--model', join(root, 'nope')], { encoding: 'utf8' });
  assert.equal(missing.status, 1, missing.stderr);
  assert.match(missing.stderr, /nope/);
  const mode = spawnSync(process.execPath, [bin, 'bench', '--mode', 'fast'], { encoding: 'utf8' });
  assert.equal(mode.status, 1);
  assert.match(mode.stderr, /--mode: expected .*"deploy"/);
});
