// End-to-end tests of `mope-clip train` and `mope-clip distill` on tiny checkpoints with builtin:fashion-scenes
// (in process): outputs and checkpoint layout, resume, distillation loss parts, a student that moves towards its
// teacher's embeddings (and does not without the teacher's terms), and the bad inputs (hidden size, projection,
// students not derived from the teacher) refused before any work. Dims: tiny geometry (test/helpers/tiny.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { GEOMETRIES } from '../src/model/init.ts';
import { register as registerTrain } from '../src/cli/train.ts';
import { register as registerDistill } from '../src/cli/distill.ts';
import { readTrainState } from '../src/train/checkpoint.ts';
import { DEFAULT_LOSS_WEIGHTS } from '../src/distill/losses.ts';
import { parseLossFlags } from '../src/cli/loss-flags.ts';
import { encodeImages, encodeTexts } from '../src/model/encode.ts';
import type { ClipModel } from '../src/model/types.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import { lastJson, runCommands } from './helpers/cli.ts';
import { rowCosines } from './helpers/compare.ts';
import { rng } from './helpers/random.ts';

async function cli(args: string[]): Promise<Record<string, any>> {
  return lastJson(await runCommands([registerTrain, registerDistill], args));
}

const DATA = ['--data', 'builtin:fashion-scenes:train', '--limit', '24', '--batch', '8', '--threads', '1'];

test('train --init tiny: JSON summary, run folder layout, eval, refuses to overwrite, --resume extends', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const out = join(dir, 'run');
  const r = await cli([
    'train',
    '--init',
    'tiny',
    ...DATA,
    '--steps',
    '4',
    '--lr',
    '1e-3',
    '--save-every',
    '2',
    '--out',
    out,
    '--eval',
    'builtin:fashion-mnist:test',
    '--eval-limit',
    '20',
    '--eval-every',
    '2',
  ]);
  assert.equal(r.steps, 4);
  assert.equal(r.eval.task, 'zeroshot');
  assert.ok(r.last_loss.total > 0 && r.last_loss.kd === 0);
  const m = loadCheckpoint(out);
  assert.equal(m.config.vision.imageSize, 32);
  for (const f of ['tokenizer.json', 'vocab.json', 'preprocessor_config.json']) assert.ok(existsSync(join(out, f)), f);
  const st = readTrainState(join(out, 'checkpoint'));
  assert.equal(st.step, 4);
  assert.equal((st.flags as { command: string }).command, 'train');
  const evals = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l.type === 'eval');
  assert.deepEqual(
    evals.map((e) => e.step),
    [2, 4],
  );
  await assert.rejects(cli(['train', '--init', 'tiny', ...DATA, '--steps', '4', '--out', out]), ConfigError);
  const r2 = await cli([
    'train',
    '--init',
    'tiny',
    ...DATA,
    '--steps',
    '6',
    '--lr',
    '1e-3',
    '--save-every',
    '2',
    '--out',
    out,
    '--resume',
  ]);
  assert.equal(r2.resumed_from, 4);
  assert.equal(r2.steps, 6);
  // a geometry file
  const g = join(dir, 'g.json');
  writeFileSync(g, JSON.stringify({ ...GEOMETRIES.tiny, vision: { ...GEOMETRIES.tiny.vision, layers: 1 } }));
  const r3 = await cli(['train', '--init', g, ...DATA, '--epochs', '1', '--out', join(dir, 'g')]);
  assert.equal(r3.steps, 3);
  assert.equal(loadCheckpoint(join(dir, 'g')).config.vision.heads.length, 1);
  await assert.rejects(
    cli(['train', ...DATA, '--steps', '1', '--out', join(dir, 'x')]),
    /exactly one of --model DIR or --init/,
  );
  await assert.rejects(
    cli(['train', '--init', 'tiny', ...DATA, '--out', join(dir, 'x')]),
    /exactly one of --steps N or --epochs N/,
  );
});

const PRUNED_WIDTHS = { vision: { heads: [2, 2], ffn: [48, 48] }, text: { heads: [4], ffn: [32], layerMap: [1] } };

test(
  'distill: a width-pruned student learns from the teacher — its distillation terms fall and its embeddings of ' +
    "unseen inputs turn towards the teacher's; with only the contrastive term they do not",
  async (t) => {
    const dir = makeTempDir();
    t.after(() => removeDir(dir));
    const teacher = join(dir, 'teacher'),
      student = join(dir, 'student');
    writeTinyCheckpoint(teacher, { withTokenizer: true, seed: 1 });
    writeTinyCheckpoint(student, { withTokenizer: true, seed: 2, widths: PRUNED_WIDTHS });
    // Inputs the run never sees: random pixels and random token sequences (BOS … EOS).
    const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };
    const r = rng(5),
      N = 6,
      E = 24;
    const pixels = Float32Array.from({ length: N * 3 * 32 * 32 }, () => 2 * r() - 1);
    const words = (n: number) => Array.from({ length: n }, () => 256 + Math.floor(r() * 1000));
    const ids = Array.from({ length: N }, (_, i) => [49406, ...words(3 + i), 49407]);
    const teacherModel = loadCheckpoint(teacher);
    const tImg = encodeImages(rt, teacherModel, pixels, N),
      tTxt = encodeTexts(rt, teacherModel, ids);
    /** Smallest cosine, over the N images and N texts, between the model's embedding and the teacher's. */
    const closeness = (m: ClipModel): number =>
      Math.min(...rowCosines(encodeImages(rt, m, pixels, N), tImg, E), ...rowCosines(encodeTexts(rt, m, ids), tTxt, E));
    /** Mean cosine over the same items. */
    const meanCos = (m: ClipModel): number => {
      const c = [
        ...rowCosines(encodeImages(rt, m, pixels, N), tImg, E),
        ...rowCosines(encodeTexts(rt, m, ids), tTxt, E),
      ];
      return c.reduce((a, b) => a + b, 0) / c.length;
    };
    const before = meanCos(loadCheckpoint(student));
    assert.ok(
      Math.abs(before) < 0.3,
      `an unrelated random student starts far from the teacher (mean cosine ${before})`,
    );
    // One batch of 8 pairs: every step sees the same pairs, so the first and last losses are comparable.
    const run = (out: string, extra: string[]) =>
      cli([
        'distill',
        '--teacher',
        teacher,
        '--student',
        student,
        '--data',
        'builtin:fashion-scenes:train',
        '--limit',
        '8',
        '--batch',
        '8',
        '--threads',
        '1',
        '--seed',
        '0',
        '--steps',
        '20',
        '--lr',
        '1e-2',
        '--out',
        join(dir, out),
        ...extra,
      ]);
    const d = await run('distilled', []);
    // Measured (seed 0): kd 1.00 → 0.03, emb 1.77 → 0.07, hid 0.92 → 0.08; cosine to the teacher min 0.88,
    // mean 0.95.
    for (const k of ['kd', 'emb', 'hid']) {
      const [a, b] = [d.first_loss[k], d.last_loss[k]];
      assert.ok(b < 0.25 * a, `${k}: ${a} → ${b}, expected ≥ 75 % less`);
    }
    const distilled = loadCheckpoint(join(dir, 'distilled'));
    const dMin = closeness(distilled),
      dMean = meanCos(distilled);
    assert.ok(dMin > 0.6 && dMean > 0.85, `distilled student: cosine to the teacher min ${dMin}, mean ${dMean}`);
    // The same run with the teacher's terms weighted 0: only the contrastive loss on the captions trains.
    const c = await run('contrastive', ['--w-kd', '0', '--w-emb', '0', '--w-hid', '0']);
    const [e0, e1] = [c.first_loss.emb, c.last_loss.emb];
    assert.ok(e1 > 0.5 * e0, `contrastive only: emb ${e0} → ${e1}`);
    const cMean = meanCos(loadCheckpoint(join(dir, 'contrastive')));
    assert.ok(cMean < 0.3, `contrastive only: mean cosine to the teacher ${cMean} (distilled: ${dMean})`);
    t.diagnostic(
      `mean cosine to the teacher: before ${before.toFixed(3)}, distilled ${dMean.toFixed(3)} ` +
        `(min ${dMin.toFixed(3)}), contrastive only ${cMean.toFixed(3)}`,
    );
  },
);

test('distill: all loss parts present; checkpoints and resume; a frozen tower does not move', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacher = join(dir, 'teacher'),
    student = join(dir, 'student'),
    out = join(dir, 'out');
  writeTinyCheckpoint(teacher, { withTokenizer: true, seed: 1 });
  writeTinyCheckpoint(student, { withTokenizer: true, seed: 2, widths: PRUNED_WIDTHS });
  const r = await cli([
    'distill',
    '--teacher',
    teacher,
    '--student',
    student,
    ...DATA,
    '--steps',
    '4',
    '--save-every',
    '2',
    '--lr',
    '1e-3',
    '--temperature',
    '2',
    '--out',
    out,
  ]);
  assert.equal(r.steps, 4);
  for (const k of ['con', 'kd', 'emb', 'hid']) assert.ok(r.first_loss[k] > 0, k);
  const m = loadCheckpoint(out);
  assert.deepEqual(m.config.vision.heads, [2, 2]);
  assert.deepEqual(m.config.text.layerMap, [1]);
  const st = readTrainState(join(out, 'checkpoint'));
  assert.deepEqual((st.flags.settings as { loss: unknown }).loss, { ...DEFAULT_LOSS_WEIGHTS, temperature: 2 });
  const r2 = await cli([
    'distill',
    '--teacher',
    teacher,
    '--student',
    student,
    ...DATA,
    '--steps',
    '6',
    '--save-every',
    '2',
    '--lr',
    '1e-3',
    '--temperature',
    '2',
    '--out',
    out,
    '--resume',
  ]);
  assert.equal(r2.resumed_from, 4);
  await assert.rejects(
    cli([
      'distill',
      '--teacher',
      teacher,
      '--student',
      student,
      ...DATA,
      '--steps',
      '8',
      '--lr',
      '1e-3',
      '--out',
      out,
      '--resume',
    ]),
    /other settings: loss was/,
  );
  // frozen text tower: its weights do not move
  const fr = join(dir, 'frozen');
  await cli([
    'distill',
    '--teacher',
    teacher,
    '--student',
    student,
    ...DATA,
    '--steps',
    '2',
    '--lr',
    '1e-2',
    '--freeze',
    'text',
    '--out',
    fr,
  ]);
  const before = loadCheckpoint(student),
    after = loadCheckpoint(fr);
  assert.deepEqual(after.weights.text.layers[0]!.fc1W, before.weights.text.layers[0]!.fc1W);
  assert.notDeepEqual(after.weights.vision.layers[0]!.fc1W, before.weights.vision.layers[0]!.fc1W);
});

test('distill bad input: hidden size, projection, image size, non-derived students — a ConfigError before any work', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacher = join(dir, 'teacher');
  writeTinyCheckpoint(teacher, { withTokenizer: true });
  const tiny = GEOMETRIES.tiny;
  const cases: Array<[string, Parameters<typeof writeTinyCheckpoint>[1], RegExp]> = [
    [
      'hidden',
      { geometry: { ...tiny, vision: { ...tiny.vision, hidden: 64 } } },
      /vision tower: the student's hidden size 64 differs from the teacher's 48.*--w-hid 0/,
    ],
    ['proj', { geometry: { ...tiny, projectionDim: 16 } }, /projects to 24 dims but the student .* to 16/],
    ['image', { geometry: { ...tiny, vision: { ...tiny.vision, imageSize: 48 } } }, /32px images .* student 48px/],
    [
      'deeper',
      { widths: { text: { heads: [4, 4, 4], layerMap: [0, 1, 2] } } },
      /text tower: the student has 3 layers, more than the teacher's 2/,
    ],
    [
      'badmap',
      { widths: { vision: { heads: [4], layerMap: [5] } } },
      /original layer 5.*not derived from this teacher/,
    ],
    ['wider', { widths: { text: { ffn: [128, 64] } } }, /student layer 0 .* is wider than teacher layer 0/],
  ];
  for (const [name, opts, re] of cases) {
    const s = join(dir, name),
      out = join(dir, `out-${name}`);
    writeTinyCheckpoint(s, { withTokenizer: true, ...opts });
    await assert.rejects(
      cli(['distill', '--teacher', teacher, '--student', s, ...DATA, '--steps', '1', '--out', out]),
      (e: Error) => {
        assert.ok(e instanceof ConfigError, `${name}: ${e.message}`);
        assert.match(e.message, re, name);
        return true;
      },
    );
    assert.ok(!existsSync(out), `${name}: nothing written`);
  }
  // without hidden-state distillation a narrower-from-scratch student is fine
  const s = join(dir, 'hidden');
  const r = await cli([
    'distill',
    '--teacher',
    teacher,
    '--student',
    s,
    ...DATA,
    '--steps',
    '1',
    '--w-hid',
    '0',
    '--out',
    join(dir, 'ok'),
  ]);
  assert.equal(r.steps, 1);
  assert.equal(r.first_loss.hid, 0);
});

test('loss flags: one weight per term; --alpha / --beta / --gamma are aliases, an explicit --w-* wins', () => {
  assert.deepEqual(parseLossFlags({ wCon: '0.5', wKd: '2', wEmb: '0', wHid: '0.1', temperature: '3' }), {
    wCon: 0.5,
    wKd: 2,
    wEmb: 0,
    wHid: 0.1,
    temperature: 3,
  });
  assert.deepEqual(parseLossFlags({ alpha: '0.5', beta: '2', gamma: '0.3' }), {
    wCon: 0.5,
    wKd: 2,
    wEmb: 0.3,
    wHid: 0.3,
  });
  assert.deepEqual(parseLossFlags({ gamma: '0.3', wHid: '0' }), { wEmb: 0.3, wHid: 0 });
  assert.deepEqual(parseLossFlags({}), {});
  assert.throws(() => parseLossFlags({ wKd: '-1' }), /--w-kd expects a number ≥ 0/);
  assert.throws(() => parseLossFlags({ temperature: '0' }), /--temperature expects a number > 0/);
});
