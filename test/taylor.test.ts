// The taylor score metric: Σ|w·∂L_con/∂w| per module, averaged over calibration batches, against a direct
// computation from gradsByName (HF tensor names, independent of the module → weight-run indexing), plus the
// score run and plan ranking under --metric taylor. Dims: prune fixture (text C 32, L 3; vision C 24, L 3, HS 8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createGrads, gradsByName, zeroGrads } from '../src/model/grads.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import { TrainStep } from '../src/train/step.ts';
import { calibrationBatches, taylorScores } from '../src/prune/taylor.ts';
import { moduleKey, type ModuleRef } from '../src/prune/modules.ts';
import { runScore } from '../src/prune/score-run.ts';
import { readScoresFile } from '../src/prune/scores-file.ts';
import { calibration, rt, tinyModel } from './helpers/prune-fixtures.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

/** Σ|w·g| over named tensors, each restricted to rows [r0, r1) or columns [c0, c1) of an [R, Ccols] matrix. */
function direct(model: ReturnType<typeof tinyModel>, batches: ReturnType<typeof calibrationBatches>, parts: Array<[string, 'rows' | 'cols' | 'all', number, number]>): number {
  const grads = createGrads(model.config);
  const step = new TrainStep(rt, { student: model, grads, loss: { wCon: 1, wKd: 0, wEmb: 0, wHid: 0 } });
  const sd = toStateDict(model);
  let total = 0;
  for (const b of batches) {
    zeroGrads(model.config, grads);
    step.forwardBackward(b);
    const g = gradsByName(model.config, grads);
    for (const [name, how, a, e] of parts) {
      const w = sd.get(name)!, gw = g.get(name)!;
      const cols = w.shape.length === 2 ? w.shape[1]! : 1, rows = w.shape[0] ?? 1;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const keep = how === 'all' || (how === 'rows' ? r >= a && r < e : c >= a && c < e);
          if (keep) total += Math.abs(w.data[r * cols + c]! * gw[r * cols + c]!) / batches.length;
        }
      }
    }
  }
  return total;
}

test('taylor = mean over batches of Σ|w·∂L_con/∂w| for heads, FFN groups and layers (direct from gradsByName)', () => {
  const model = tinyModel();
  const cal = calibration('retrieval', 10);
  const batches = calibrationBatches(model, cal, 4); // 10 pairs → 3 batches of 3, 3, 4
  assert.deepEqual(batches.map((b) => b.B), [3, 3, 4]);
  const mods: ModuleRef[] = [
    { tower: 'vision', kind: 'head', layer: 1, index: 2 },
    { tower: 'text', kind: 'ffn', layer: 0, index: 1 },
    { tower: 'vision', kind: 'layer', layer: 2, index: 0 },
  ];
  const got = taylorScores(rt, model, cal, mods, { batch: 4, ffnGroupSize: 16 });
  const HS = 8, v1 = 'vision_model.encoder.layers.1.self_attn.';
  const head = direct(model, batches, [
    [`${v1}q_proj.weight`, 'rows', 2 * HS, 3 * HS], [`${v1}k_proj.weight`, 'rows', 2 * HS, 3 * HS],
    [`${v1}v_proj.weight`, 'rows', 2 * HS, 3 * HS], [`${v1}out_proj.weight`, 'cols', 2 * HS, 3 * HS],
  ]);
  const t0 = 'text_model.encoder.layers.0.mlp.';
  const ffn = direct(model, batches, [[`${t0}fc1.weight`, 'rows', 16, 32], [`${t0}fc2.weight`, 'cols', 16, 32]]);
  const layerNames = [...toStateDict(model).keys()].filter((k) => k.startsWith('vision_model.encoder.layers.2.'));
  assert.equal(layerNames.length, 16);
  const layer = direct(model, batches, layerNames.map((n) => [n, 'all', 0, 0] as [string, 'all', number, number]));
  for (const [m, want] of [[mods[0]!, head], [mods[1]!, ffn], [mods[2]!, layer]] as const) {
    const v = got.get(moduleKey(m))!;
    assert.ok(want > 0 && Math.abs(v - want) <= 1e-9 * want, `${moduleKey(m)}: ${v} vs direct ${want}`);
  }
});

test('score run with --metric taylor writes a complete, valid scores file', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const model = tinyModel();
  const out = join(dir, 'taylor.json');
  const f = runScore(rt, model, calibration('retrieval', 8), {
    out, modelPath: 'tiny', data: 'x', zeroshotData: null, limit: null, task: null, metric: 'taylor', seed: 0,
    towers: ['vision', 'text'], kinds: ['head', 'ffn', 'layer'], ffnGroupSize: 16, shard: null, resume: false, batch: 4,
  });
  assert.ok(f.complete);
  const back = readScoresFile(out);
  assert.equal(back.metric, 'taylor');
  assert.ok(back.modules.every((m) => typeof m.taylor === 'number' && m.taylor >= 0 && typeof m.magnitude === 'number'));
  assert.throws(() => runScore(rt, model, null, {
    out: join(dir, 'x.json'), modelPath: 'tiny', data: null, zeroshotData: null, limit: null, task: null, metric: 'taylor', seed: 0,
    towers: ['vision'], kinds: ['head'], ffnGroupSize: 16, shard: null, resume: false,
  }), /taylor needs calibration/);
});

test('mope-clip score --metric taylor on a checkpoint and builtin pairs; needs --data', async (t) => {
  const { runCommands } = await import('./helpers/cli.ts');
  const { register } = await import('../src/cli/score.ts');
  const { writeTinyCheckpoint } = await import('./helpers/tiny.ts');
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  writeTinyCheckpoint(dir, { withTokenizer: true });
  const run = (args: string[]) => runCommands([register], args);
  const out = join(dir, 's.json');
  await run(['score', '--model', dir, '--metric', 'taylor', '--data', 'builtin:fashion-scenes:test', '--limit', '8', '--batch', '4',
    '--tower', 'both', '--granularity', 'heads,layers', '--out', out, '--threads', '1']);
  const f = readScoresFile(out);
  assert.equal(f.modules.length, 2 * (2 * 4 + 2));
  assert.ok(f.modules.every((m) => (m.taylor ?? -1) > 0));
  await assert.rejects(run(['score', '--model', dir, '--metric', 'taylor', '--out', join(dir, 'y.json')]), /taylor needs --data/);
});
