// compress pipeline on a tiny checkpoint with tiny budgets: every finetune stage runs and writes the run folder,
// a rerun skips completed stages and redoes only unfinished ones, other settings are refused, the pruned result is
// smaller; plus the pretrain stage (both towers) and bad flags. Dims: the tiny geometry of test/helpers/tiny.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeKernels } from '../src/engine/native.ts';
import { type Runtime } from '../src/engine/runtime.ts';
import { ConfigError } from '../src/errors.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { compress, type CompressOptions } from '../src/pipeline/compress.ts';
import type { StagesFile } from '../src/pipeline/stages.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';

const kernels = loadNativeKernels();
kernels.setThreads(1);
const logs: string[] = [];
const rt: Runtime = { kernels, threads: 1, seed: 0, log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) } };

function options(model: string, out: string, over: Partial<CompressOptions> = {}): CompressOptions {
  return {
    model,
    out,
    data: 'builtin:fashion-scenes:train',
    calib: 'builtin:fashion-scenes:val',
    calibLimit: 8,
    stage: 'finetune',
    tower: 'vision',
    keepHeads: 0.5,
    keepFfn: 0.5,
    keepLayers: 1,
    criterion: 'mope',
    ffnGroupSize: 16,
    distill: { steps: 2, batch: 4, lr: 1e-3, weightDecay: 0, warmup: 0, gradClip: 1 },
    eval: ['builtin:fashion-scenes:test', 'builtin:fashion-mnist:test'],
    evalLimit: 8,
    seed: 3,
    ...over,
  };
}

const readStages = (out: string) => JSON.parse(readFileSync(join(out, 'stages.json'), 'utf8')) as StagesFile;

test('compress finetune: all stages, run folder, resume skips completed stages, smaller model', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  const teacher = writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  const out = join(dir, 'run');
  const s = await compress(rt, options(teacherDir, out));
  const st = readStages(out);
  assert.deepEqual(
    st.completed.map((c) => c.name),
    [
      'eval-teacher',
      'score-width',
      'prune-width',
      'eval-width',
      'distill-width',
      'eval-width-distilled',
      'prune-depth',
      'eval-depth',
      'distill-final',
      'eval-final',
      'report',
    ],
  );
  for (const f of [
    'scores/width.json',
    'scores/depth-vision-1.json',
    'width/model.safetensors',
    'distill-width/model.safetensors',
    'depth/config.json',
    'distill-final/model.safetensors',
    'eval/teacher.json',
    'eval/final.json',
    'report.html',
    'scores/report.html',
    'summary.json',
  ]) {
    assert.ok(existsSync(join(out, f)), `${f} missing`);
  }
  const final = loadCheckpoint(s.final_model);
  assert.deepEqual(final.config.vision.heads, [2]);
  assert.deepEqual(final.config.vision.ffn, [48]);
  assert.equal(final.config.vision.layerMap.length, 1);
  assert.deepEqual(final.config.text.heads, teacher.config.text.heads, 'the text tower is untouched');
  assert.ok(s.evals.final!.params < s.evals.teacher!.params);
  assert.ok(s.evals.final!.gflops_image < s.evals.teacher!.gflops_image);
  assert.equal(s.batch_per_rank, 4, 'one process: the whole batch, as the distil stages reported it');
  assert.ok(s.evals.width!.zeroshot !== null && s.evals.width!.retrieval !== null);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /<table>/);
  assert.match(html, /<svg/);

  // A finished run: a rerun does nothing but report.
  logs.length = 0;
  await compress(rt, options(teacherDir, out));
  assert.equal(readStages(out).completed.length, st.completed.length);
  assert.ok(logs.some((l) => /score-width: done earlier, skipped/.test(l)));

  // An interrupted run (last stages unrecorded): the rerun redoes exactly those.
  const cut = readStages(out);
  const kept = cut.completed.slice(0, 8);
  writeFileSync(join(out, 'stages.json'), JSON.stringify({ ...cut, completed: kept }));
  await compress(rt, options(teacherDir, out));
  const after = readStages(out);
  assert.deepEqual(after.completed.slice(0, 8), kept, 'completed stages are not redone');
  assert.deepEqual(
    after.completed.slice(8).map((c) => c.name),
    ['distill-final', 'eval-final', 'report'],
  );

  await assert.rejects(
    compress(rt, options(teacherDir, out, { keepHeads: 0.25 })),
    (e: unknown) => e instanceof ConfigError && /other settings/.test((e as Error).message),
  );
});

test('compress pretrain: both towers pruned in width and depth, one distillation', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  const out = join(dir, 'run');
  const s = await compress(
    rt,
    options(teacherDir, out, { stage: 'pretrain', tower: 'both', criterion: 'magnitude', calib: null, eval: [] }),
  );
  assert.deepEqual(
    readStages(out).completed.map((c) => c.name),
    [
      'eval-teacher',
      'score-width',
      'prune-width',
      'eval-width',
      'prune-depth',
      'eval-depth',
      'distill-final',
      'eval-final',
      'report',
    ],
  );
  const m = loadCheckpoint(s.final_model);
  assert.equal(m.config.vision.heads.length, 1);
  assert.equal(m.config.text.heads.length, 1);
  assert.deepEqual(m.config.text.heads, [2]);
  assert.equal(s.evals.final!.zeroshot, null);
});

test('compress with Taylor scores, text tower, prune only (--steps 0)', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  const out = join(dir, 'run');
  const s = await compress(
    rt,
    options(teacherDir, out, {
      tower: 'text',
      criterion: 'taylor',
      keepLayers: undefined,
      distill: { ...options('', '').distill, steps: 0 },
      eval: [],
    }),
  );
  assert.deepEqual(
    readStages(out).completed.map((c) => c.name),
    ['eval-teacher', 'score-width', 'prune-width', 'eval-width', 'report'],
  );
  assert.deepEqual(loadCheckpoint(s.final_model).config.text.heads, [2, 2]);
  const scores = JSON.parse(readFileSync(join(out, 'scores', 'width.json'), 'utf8')) as {
    metric: string;
    modules: Array<{ taylor?: number }>;
  };
  assert.equal(scores.metric, 'taylor');
  assert.ok(scores.modules.every((m) => typeof m.taylor === 'number'));
});

test('compress refuses bad settings before any work', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  const bad = async (over: Partial<CompressOptions>, re: RegExp) =>
    assert.rejects(
      compress(rt, options(teacherDir, join(dir, 'x'), over)),
      (e: unknown) => e instanceof ConfigError && re.test((e as Error).message),
    );
  await bad({ tower: 'both' }, /finetune compresses one tower/);
  await bad({ keepLayers: 5 }, /--keep-layers expects an integer in \[1, 2\]/);
  await bad({ calib: null }, /needs --calib/);
  assert.ok(!existsSync(join(dir, 'x', 'scores')));
});
