// compress knobs on a tiny checkpoint: per-tower kept fractions and layer counts, global scope (the kept heads are the
// best over the tower, at least one per layer), criterion scratch (the pruned shape with fresh weights), separate
// width / final step budgets, a distinct --teacher, and the calibration settings checks.
// Dims: the tiny geometry of test/helpers/tiny.ts (text 2 × 4 heads, FFN 64; vision 2 × 4 heads, FFN 96).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { ConfigError } from '../src/errors.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/io/checkpoint.ts';
import { compress, type CompressOptions } from '../src/pipeline/compress.ts';
import type { StagesFile } from '../src/pipeline/stages.ts';
import { magnitude } from '../src/prune/baselines.ts';
import { reinitTowers } from '../src/prune/scratch.ts';
import { parseTowerValues, isFraction } from '../src/prune/tower-values.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';

const kernels = loadNativeKernels();
kernels.setThreads(1);
const rt: Runtime = { kernels, threads: 1, seed: 0, log: silentLogger };

function options(model: string, out: string, over: Partial<CompressOptions> = {}): CompressOptions {
  return {
    model,
    out,
    data: 'builtin:fashion-scenes:train',
    calib: null,
    calibLimit: 8,
    stage: 'pretrain',
    tower: 'both',
    keepHeads: 1,
    keepFfn: 1,
    criterion: 'magnitude',
    ffnGroupSize: 16,
    distill: { steps: 0, batch: 4, lr: 1e-3, weightDecay: 0, warmup: 0, gradClip: 1 },
    eval: [],
    seed: 3,
    ...over,
  };
}

test('tower values: a bare number or vision=X,text=Y; bad input refused', () => {
  assert.equal(parseTowerValues('0.5', '--keep-heads', isFraction, 'f'), 0.5);
  assert.deepEqual(parseTowerValues('vision=0.5,text=0.75', '--keep-heads', isFraction, 'f'), {
    vision: 0.5,
    text: 0.75,
  });
  for (const bad of ['vision=2', 'audio=0.5', 'vision=0.5,vision=0.6', 'vision', '']) {
    assert.throws(() => parseTowerValues(bad, '--keep-heads', isFraction, 'f'), ConfigError, bad);
  }
});

test('per-tower ratios prune each tower by its own fraction and layer count', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  writeTinyCheckpoint(join(dir, 'teacher'), { withTokenizer: true });
  const s = await compress(
    rt,
    options(join(dir, 'teacher'), join(dir, 'run'), {
      keepHeads: { vision: 0.5, text: 0.75 },
      keepFfn: { vision: 0.5, text: 0.25 },
      keepLayers: { vision: 1 },
    }),
  );
  const m = loadCheckpoint(s.final_model);
  assert.deepEqual(m.config.vision.heads, [2]);
  assert.deepEqual(m.config.vision.ffn, [48]);
  assert.deepEqual(m.config.text.heads, [3, 3]);
  assert.deepEqual(m.config.text.ffn, [16, 16]);
  // A bare number means both towers.
  const b = await compress(rt, options(join(dir, 'teacher'), join(dir, 'run2'), { keepHeads: 0.5, keepLayers: 1 }));
  const mb = loadCheckpoint(b.final_model);
  assert.deepEqual([mb.config.vision.heads, mb.config.text.heads], [[2], [2]]);
  const textOnly = { stage: 'finetune' as const, tower: 'vision' as const, keepHeads: { text: 0.5 } };
  await assert.rejects(
    compress(rt, options(join(dir, 'teacher'), join(dir, 'x'), textOnly)),
    (e: unknown) => e instanceof ConfigError && /names the text tower/.test((e as Error).message),
  );
});

test('global scope keeps the tower-wide best heads (≥ 1 per layer); per-layer keeps half of each layer', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  const m0 = writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  // Layer 0's vision heads get 4× the weights, so by magnitude all of them beat every head of layer 1.
  const w0 = m0.weights.vision.layers[0]!;
  for (const a of [w0.qkvW, w0.outW]) for (let i = 0; i < a.length; i++) a[i] *= 4;
  saveCheckpoint(m0, teacherDir);
  const opts = { stage: 'finetune' as const, tower: 'vision' as const, keepHeads: 0.5 };
  const g = await compress(rt, options(teacherDir, join(dir, 'global'), { ...opts, scope: 'global' }));
  const p = await compress(rt, options(teacherDir, join(dir, 'per-layer'), opts));
  assert.deepEqual(
    loadCheckpoint(g.final_model).config.vision.heads,
    [3, 1],
    '4 of 8 heads: 3 from layer 0, the minimum 1 from layer 1',
  );
  assert.deepEqual(loadCheckpoint(p.final_model).config.vision.heads, [2, 2]);
  // The one head kept in layer 1 is that layer's largest by magnitude: its out_proj columns are the teacher's.
  const mags = [0, 1, 2, 3].map((i) => magnitude(m0, { tower: 'vision', kind: 'head', layer: 1, index: i }, 16));
  const best = mags.indexOf(Math.max(...mags));
  const C = m0.config.vision.hidden,
    HS = m0.config.vision.headDim,
    D = 4 * HS;
  const kept = loadCheckpoint(g.final_model).weights.vision.layers[1]!.outW;
  const orig = m0.weights.vision.layers[1]!.outW;
  for (let c = 0; c < C; c++) for (let j = 0; j < HS; j++) assert.equal(kept[c * HS + j], orig[c * D + best * HS + j]);
});

test('scratch: the magnitude-pruned shape, fresh weights in the compressed tower, the other tower kept', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  const teacher = writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  const opts = { stage: 'finetune' as const, tower: 'vision' as const, keepHeads: 0.5, keepFfn: 0.5, keepLayers: 1 };
  const mag = await compress(rt, options(teacherDir, join(dir, 'mag'), opts));
  const scr = await compress(rt, options(teacherDir, join(dir, 'scr'), { ...opts, criterion: 'scratch' }));
  const a = loadCheckpoint(mag.final_model),
    b = loadCheckpoint(scr.final_model);
  assert.deepEqual(b.config.vision.heads, a.config.vision.heads);
  assert.deepEqual(b.config.vision.ffn, a.config.vision.ffn);
  assert.equal(b.config.vision.heads.length, 1);
  // Fresh: the width-pruned scratch model is exactly the magnitude-pruned one re-initialised with the run's seed.
  const width = loadCheckpoint(join(dir, 'scr', 'width'));
  const expect = reinitTowers(loadCheckpoint(join(dir, 'mag', 'width')), ['vision'], 3);
  assert.deepEqual(width.weights.vision.layers[0]!.qkvW, expect.weights.vision.layers[0]!.qkvW);
  assert.deepEqual(width.weights.vision.patchEmbedding, expect.weights.vision.patchEmbedding);
  const magWidth = loadCheckpoint(join(dir, 'mag', 'width'));
  assert.notDeepEqual(width.weights.vision.layers[0]!.qkvW, magWidth.weights.vision.layers[0]!.qkvW);
  assert.deepEqual(b.weights.text.layers[0]!.qkvW, teacher.weights.text.layers[0]!.qkvW, 'text tower = teacher’s');
});

test('width and final distillation budgets are separate; --teacher may differ from --model', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  writeTinyCheckpoint(join(dir, 'teacher'), { withTokenizer: true });
  writeTinyCheckpoint(join(dir, 'other'), { withTokenizer: true, seed: 9 });
  const out = join(dir, 'run');
  await compress(
    rt,
    options(join(dir, 'other'), out, {
      teacher: join(dir, 'teacher'),
      stage: 'finetune',
      tower: 'vision',
      keepHeads: 0.5,
      keepLayers: 1,
      distill: { steps: 5, widthSteps: 1, finalSteps: 2, batch: 4, lr: 1e-3, weightDecay: 0, warmup: 0, gradClip: 1 },
    }),
  );
  const st = JSON.parse(readFileSync(join(out, 'stages.json'), 'utf8')) as StagesFile;
  const steps = (n: string) => st.completed.find((c) => c.name === n)!.result.steps;
  assert.equal(steps('distill-width'), 1);
  assert.equal(steps('distill-final'), 2);
  assert.equal(st.options.teacher, join(dir, 'teacher'));
  assert.notEqual(st.options.teacher_fingerprint, st.options.model_fingerprint);
});

test('calibration settings: the zero-shot weight needs zero-shot data and lies in [0, 1]', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  writeTinyCheckpoint(join(dir, 'teacher'), { withTokenizer: true });
  const o = {
    stage: 'finetune' as const,
    tower: 'vision' as const,
    criterion: 'mope' as const,
    calib: 'builtin:fashion-scenes:val',
    keepHeads: 0.5,
  };
  await assert.rejects(
    compress(rt, options(join(dir, 'teacher'), join(dir, 'a'), { ...o, calibZeroshotWeight: 0.3 })),
    (e: unknown) => e instanceof ConfigError && /needs --calib-zeroshot/.test((e as Error).message),
  );
  const heavy = { ...o, calibZeroshot: 'builtin:fashion-mnist:val', calibZeroshotWeight: 2 };
  await assert.rejects(
    compress(rt, options(join(dir, 'teacher'), join(dir, 'b'), heavy)),
    (e: unknown) => e instanceof ConfigError && /\[0, 1\]/.test((e as Error).message),
  );
});
