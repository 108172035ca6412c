// The training loop (src/train/loop.ts) on the tiny geometry with builtin:fashion-scenes: loss decreases, kill +
// --resume equals a straight run, streaming file data equals in-memory data, NaN stops at the named step keeping the
// last good checkpoint, a failed checkpoint write keeps the previous one. Dims: tiny (text C 32, vision C 48, E 24).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { CheckpointError } from '../src/errors.ts';
import { openDataset } from '../src/data/spec.ts';
import { pairsFromArray, type PairsDataset } from '../src/data/dataset.ts';
import { exportDataset } from '../src/data/export.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import { GEOMETRIES } from '../src/model/init.ts';
import type { ClipModel } from '../src/model/types.ts';
import { initModelFiles, readGeometry } from '../src/train/init-geometry.ts';
import { trainLoop, type TrainLoopOptions } from '../src/train/loop.ts';
import { epochOrder, padTokens } from '../src/train/data.ts';
import { readTrainState } from '../src/train/checkpoint.ts';
import { NonFiniteLossError } from '../src/train/step.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };
rt.kernels.setThreads(1);

function scenes(n: number): PairsDataset {
  return openDataset('builtin:fashion-scenes:train', { limit: n }).dataset as PairsDataset;
}

/** Scenes with two captions each, so the per-step caption draw matters. */
function twoCaptionScenes(n: number): PairsDataset {
  const ds = scenes(n);
  const items = Array.from({ length: n }, (_, i) => {
    const it = ds.get(i);
    return { ...it, captions: [it.captions[0]!, `a photo showing ${it.captions[0]}`] };
  });
  return pairsFromArray('test:two-captions', items);
}

function maxDiff(a: ClipModel, b: ClipModel): number {
  const sb = toStateDict(b);
  let m = 0;
  for (const [k, t] of toStateDict(a)) {
    const u = sb.get(k)!.data;
    for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(t.data[i]! - u[i]!));
  }
  return m;
}

const base = (out: string, data: PairsDataset, extra: Partial<TrainLoopOptions> = {}): TrainLoopOptions => ({
  student: initModelFiles(GEOMETRIES.tiny, 0),
  data,
  batch: 8,
  accum: 2,
  steps: 8,
  seed: 5,
  out,
  optim: { lr: 1e-3, warmup: 2, gradClip: 1 },
  ...extra,
});

test('epoch order is a seeded permutation per epoch; padding is right-aligned with a mask', () => {
  const a = epochOrder(20, 1, 0, true),
    b = epochOrder(20, 1, 1, true);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.notDeepEqual(a, b);
  assert.deepEqual(epochOrder(20, 1, 0, true), a);
  assert.deepEqual(epochOrder(5, 1, 3, false), [0, 1, 2, 3, 4]);
  const p = padTokens(
    [
      [1, 2, 3],
      [1, 3],
    ],
    3,
  );
  assert.equal(p.T, 3);
  assert.deepEqual([...p.ids], [1, 2, 3, 1, 3, 3]);
  assert.deepEqual([...p.attentionMask], [1, 1, 1, 1, 1, 0]);
});

test('contrastive training of a tiny model: the loss falls well below chance in 30 steps', async (t) => {
  const out = makeTempDir();
  t.after(() => removeDir(out));
  const r = await trainLoop(
    rt,
    base(out, scenes(16), {
      batch: 16,
      accum: 1,
      steps: 30,
      optim: { lr: 2e-3, warmup: 5, gradClip: 1, weightDecay: 0 },
      eval: { data: scenes(16), every: 15 },
    }),
  );
  assert.ok(r.firstLoss!.total > Math.log(16), `first loss ${r.firstLoss!.total}`);
  assert.ok(r.lastLoss!.total < Math.log(16) - 0.2, `last loss ${r.lastLoss!.total} vs chance ${Math.log(16)}`);
  assert.equal(r.steps, 30);
  assert.deepEqual(
    r.evals.map((e) => e.step),
    [15, 30],
  );
  assert.equal(r.finalEval!.task, 'retrieval');
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.filter((l) => l.type === 'train').length, 30);
  assert.equal(lines.filter((l) => l.type === 'eval').length, 2);
  for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json'])
    assert.ok(existsSync(join(out, f)), f);
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'train_state.json', 'tokenizer.json'])
    assert.ok(existsSync(join(out, 'checkpoint', f)), f);
  assert.equal(
    maxDiff(loadCheckpoint(out), loadCheckpoint(join(out, 'checkpoint'))),
    0,
    'the final model is the last checkpoint',
  );
});

test('N steps, kill, --resume to 2N equals 2N straight (shuffle, two captions, accumulation)', async (t) => {
  const a = makeTempDir(),
    b = makeTempDir();
  t.after(() => {
    removeDir(a);
    removeDir(b);
  });
  const data = twoCaptionScenes(24); // 24 items, 16 per step: one step per epoch, so epochs turn over too
  const straight = base(a, data, { saveEvery: 4 });
  await trainLoop(rt, straight);
  const killed = base(b, data, { saveEvery: 4, stopAfter: 4 });
  const rk = await trainLoop(rt, killed);
  assert.equal(rk.stopped, true);
  assert.equal(readTrainState(join(b, 'checkpoint')).step, 4);
  assert.ok(!existsSync(join(b, 'model.safetensors')), 'a killed run has no final model yet');
  // a fresh process would start from another initialisation: the checkpoint must override it
  const resumed = base(b, data, { saveEvery: 4, resume: true, student: initModelFiles(GEOMETRIES.tiny, 99) });
  const rr = await trainLoop(rt, resumed);
  assert.equal(rr.startStep, 4);
  assert.equal(rr.steps, 8);
  const d = maxDiff(straight.student.model, resumed.student.model);
  assert.ok(d <= 1e-6, `max |Δw| ${d}`);
  assert.ok(maxDiff(loadCheckpoint(a), loadCheckpoint(b)) <= 1e-6);
  const st = readTrainState(join(b, 'checkpoint'));
  assert.equal(st.step, 8);
  assert.equal(st.data.epoch, 7);
  // metrics of the resumed run: each step once
  const steps = readFileSync(join(b, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
  // changed settings are refused on resume; an existing run is not overwritten without --resume
  await assert.rejects(trainLoop(rt, base(b, data, { resume: true, batch: 4 })), /other settings: batch was 8, now 4/);
  await assert.rejects(trainLoop(rt, base(b, data)), /already holds a training checkpoint/);
});

test('image files through the streaming loader train exactly like the in-memory builtin data', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  await exportDataset('builtin:fashion-scenes:train', join(dir, 'csv'), { limit: 20, progress: false });
  const files = openDataset(`csv:${join(dir, 'csv', 'data.csv')}`).dataset as PairsDataset;
  const mem = base(join(dir, 'a'), scenes(20), { steps: 3, accum: 1 });
  const str = base(join(dir, 'b'), files, { steps: 3, accum: 1, workers: 1 });
  await trainLoop(rt, mem);
  await trainLoop(rt, str);
  assert.ok(maxDiff(mem.student.model, str.student.model) <= 1e-6);
});

test('NaN loss: stops naming the step, the last good checkpoint survives', async (t) => {
  const out = makeTempDir();
  t.after(() => removeDir(out));
  const o = base(out, scenes(16), {
    steps: 6,
    saveEvery: 2,
    onStep: (r) => {
      if (r.step === 3) o.student.model.weights.logitScale[0] = Number.NaN;
    },
  });
  await assert.rejects(trainLoop(rt, o), (e: Error) => {
    assert.ok(e instanceof NonFiniteLossError);
    assert.match(e.message, /step 4/);
    assert.match(e.message, /last good checkpoint \(step 2\)/);
    return true;
  });
  assert.equal(readTrainState(join(out, 'checkpoint')).step, 2);
  assert.ok(Number.isFinite(loadCheckpoint(join(out, 'checkpoint')).weights.logitScale[0]!));
});

test('a failed checkpoint write (disk full) leaves the previous checkpoint intact', async (t) => {
  const out = makeTempDir();
  t.after(() => removeDir(out));
  let saves = 0;
  const o = base(out, scenes(16), {
    steps: 6,
    saveEvery: 2,
    writeHook: (f) => {
      if (f === 'optimizer.safetensors' && ++saves === 2)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    },
  });
  await assert.rejects(trainLoop(rt, o), (e: Error) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /step-4 checkpoint.*ENOSPC.*previous checkpoint .* is intact/s);
    return true;
  });
  assert.equal(readTrainState(join(out, 'checkpoint')).step, 2);
  assert.ok(!existsSync(join(out, 'checkpoint.tmp')));
  loadCheckpoint(join(out, 'checkpoint'));
  // and the run resumes from it
  const r = await trainLoop(rt, base(out, scenes(16), { steps: 6, saveEvery: 2, resume: true }));
  assert.equal(r.startStep, 2);
  assert.equal(r.steps, 6);
});

test('--init: geometry names and JSON files, with clear errors', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  assert.equal(readGeometry('tiny').vision.imageSize, 32);
  assert.throws(() => readGeometry(join(dir, 'missing.json')), /neither a geometry name/);
  const m = initModelFiles(readGeometry('tiny'), 1);
  assert.equal(m.preprocess.cropSize.height, 32);
  assert.equal(m.tokenizer.contextLength, 77);
});
