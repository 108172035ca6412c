// The taylor score metric: Σ|w·∂L_con/∂w| per module, averaged over calibration batches, against a direct
// computation from gradsByName (HF tensor names, independent of the module → weight-run indexing), plus the
// score run and plan ranking under --metric taylor. Dims: prune fixture (text C 32, L 3; vision C 24, L 3, HS 8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createGrads, gradsByName, zeroGrads } from '../src/model/grads.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import { textForward, visionForward } from '../src/model/forward.ts';
import type { ClipModel } from '../src/model/types.ts';
import { TrainStep, type TrainBatch } from '../src/train/step.ts';
import { calibrationBatches, taylorScores } from '../src/prune/taylor.ts';
import { moduleKey, type ModuleRef } from '../src/prune/modules.ts';
import { runScore } from '../src/prune/score-run.ts';
import { readScoresFile, type ScoreEntry } from '../src/prune/scores-file.ts';
import { loadCalibration } from '../src/prune/calibration.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { makeRuntime } from '../src/cli/common.ts';
import { calibration, rt, tinyModel } from './helpers/prune-fixtures.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

/** Weights of a module: a named tensor, all of it, or rows [a, e) or columns [a, e) of an [R, C] matrix. */
type Part = [name: string, how: 'rows' | 'cols' | 'all', a: number, e: number];

/** Flat indices of the part's elements in its tensor of the given shape. */
function partIndices(shape: number[], [, how, a, e]: Part): number[] {
  const rows = shape[0] ?? 1,
    cols = shape.length === 2 ? shape[1]! : shape.slice(1).reduce((x, y) => x * y, 1);
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (how === 'all' || (how === 'rows' ? r >= a && r < e : c >= a && c < e)) out.push(r * cols + c);
    }
  }
  return out;
}

/** ∂L_con/∂w by HF tensor name, one map per calibration batch. */
function gradsPerBatch(model: ClipModel, batches: TrainBatch[]): Array<Map<string, Float32Array>> {
  const grads = createGrads(model.config);
  const step = new TrainStep(rt, { student: model, grads, loss: { wCon: 1, wKd: 0, wEmb: 0, wHid: 0 } });
  return batches.map((b) => {
    zeroGrads(model.config, grads);
    step.forwardBackward(b);
    return new Map([...gradsByName(model.config, grads)].map(([k, v]) => [k, Float32Array.from(v)]));
  });
}

/** Mean over batches of Σ|w·g| over the parts. */
function direct(model: ClipModel, batches: TrainBatch[], parts: Part[]): number {
  const sd = toStateDict(model);
  let total = 0;
  for (const g of gradsPerBatch(model, batches)) {
    for (const p of parts) {
      const w = sd.get(p[0])!,
        gw = g.get(p[0])!;
      for (const i of partIndices(w.shape, p)) total += Math.abs(w.data[i]! * gw[i]!) / batches.length;
    }
  }
  return total;
}

test('taylor = mean over batches of Σ|w·∂L_con/∂w| for heads, FFN groups and layers (direct from gradsByName)', () => {
  const model = tinyModel();
  const cal = calibration('retrieval', 10);
  const batches = calibrationBatches(model, cal, 4); // 10 pairs → 3 batches of 3, 3, 4
  assert.deepEqual(
    batches.map((b) => b.B),
    [3, 3, 4],
  );
  const mods: ModuleRef[] = [
    { tower: 'vision', kind: 'head', layer: 1, index: 2 },
    { tower: 'text', kind: 'ffn', layer: 0, index: 1 },
    { tower: 'vision', kind: 'layer', layer: 2, index: 0 },
  ];
  const got = taylorScores(rt, model, cal, mods, { batch: 4, ffnGroupSize: 16 });
  const HS = 8,
    v1 = 'vision_model.encoder.layers.1.self_attn.';
  const head = direct(model, batches, [
    [`${v1}q_proj.weight`, 'rows', 2 * HS, 3 * HS],
    [`${v1}k_proj.weight`, 'rows', 2 * HS, 3 * HS],
    [`${v1}v_proj.weight`, 'rows', 2 * HS, 3 * HS],
    [`${v1}out_proj.weight`, 'cols', 2 * HS, 3 * HS],
  ]);
  const t0 = 'text_model.encoder.layers.0.mlp.';
  const ffn = direct(model, batches, [
    [`${t0}fc1.weight`, 'rows', 16, 32],
    [`${t0}fc2.weight`, 'cols', 16, 32],
  ]);
  const layerNames = [...toStateDict(model).keys()].filter((k) => k.startsWith('vision_model.encoder.layers.2.'));
  assert.equal(layerNames.length, 16);
  const layer = direct(
    model,
    batches,
    layerNames.map((n): Part => [n, 'all', 0, 0]),
  );
  for (const [m, want] of [
    [mods[0]!, head],
    [mods[1]!, ffn],
    [mods[2]!, layer],
  ] as const) {
    const v = got.get(moduleKey(m))!;
    assert.ok(want > 0 && Math.abs(v - want) <= 1e-9 * want, `${moduleKey(m)}: ${v} vs direct ${want}`);
  }
});

/**
 * L_con of one batch from the inference forward (not the training tape nor the loss module): with Î, T̂ the
 * L2-normalised embeddings and S = exp(s)·Î·T̂ᵀ, ½[mean_i (lse_j S_ij − S_ii) + mean_j (lse_i S_ij − S_jj)],
 * in double.
 */
function contrastiveLoss(model: ClipModel, b: TrainBatch): number {
  const E = model.config.projectionDim;
  const unit = (x: Float32Array) =>
    Array.from({ length: b.B }, (_, i) => {
      const r = Array.from(x.subarray(i * E, (i + 1) * E));
      const n = Math.hypot(...r);
      return r.map((v) => v / n);
    });
  const txt = unit(textForward(rt, model, b.ids, b.B, b.T, { attentionMask: b.attentionMask }).embeds);
  const img = unit(visionForward(rt, model, b.pixels, b.B).embeds);
  const scale = Math.exp(model.weights.logitScale[0]!);
  const S = img.map((u) => txt.map((v) => scale * u.reduce((a, x, k) => a + x * v[k]!, 0)));
  const lse = (xs: number[]) => {
    const m = Math.max(...xs);
    return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
  };
  let rows = 0,
    cols = 0;
  for (let i = 0; i < b.B; i++) {
    rows += lse(S[i]!) - S[i]![i]!;
    cols += lse(S.map((r) => r[i]!)) - S[i]![i]!;
  }
  return (rows + cols) / (2 * b.B);
}

test('taylor agrees with finite differences of the loss: Σ|w·g| = d/dε L(w + ε·sign(w·g)·w) over the module', (t) => {
  // The directional derivative of L_con along d = sign(w·g)·w (zero outside the module) is Σ g·d = Σ|w·g| when g
  // is the true gradient; a wrong gradient (magnitude or sign) changes it. Central differences on the forward alone.
  const model = tinyModel();
  const cal = calibration('retrieval', 10);
  const batches = calibrationBatches(model, cal, 4);
  const HS = 8,
    v1 = 'vision_model.encoder.layers.1.self_attn.',
    t0 = 'text_model.encoder.layers.0.mlp.';
  const sd = toStateDict(model);
  const cases: Array<[ModuleRef, Part[]]> = [
    [
      { tower: 'vision', kind: 'head', layer: 1, index: 2 },
      [
        [`${v1}q_proj.weight`, 'rows', 2 * HS, 3 * HS],
        [`${v1}k_proj.weight`, 'rows', 2 * HS, 3 * HS],
        [`${v1}v_proj.weight`, 'rows', 2 * HS, 3 * HS],
        [`${v1}out_proj.weight`, 'cols', 2 * HS, 3 * HS],
      ],
    ],
    [
      { tower: 'text', kind: 'ffn', layer: 0, index: 1 },
      [
        [`${t0}fc1.weight`, 'rows', 16, 32],
        [`${t0}fc2.weight`, 'cols', 16, 32],
      ],
    ],
    [
      { tower: 'text', kind: 'layer', layer: 2, index: 0 },
      [...sd.keys()].filter((k) => k.startsWith('text_model.encoder.layers.2.')).map((n): Part => [n, 'all', 0, 0]),
    ],
  ];
  const got = taylorScores(
    rt,
    model,
    cal,
    cases.map(([m]) => m),
    { batch: 4, ffnGroupSize: 16 },
  );
  const grads = gradsPerBatch(model, batches);
  // ε = 3e-4: truncation (~ε²) and float32 rounding of the forward (~1e-7/ε) both below 1e-4 relative (measured).
  const h = 3e-4;
  for (const [m, parts] of cases) {
    let fd = 0;
    batches.forEach((b, k) => {
      // The module's elements (views into the model's buffers), their values and their directions.
      const elems = parts.flatMap((p) => {
        const w = sd.get(p[0])!,
          gw = grads[k]!.get(p[0])!;
        const dir = (i: number) => Math.sign(w.data[i]! * gw[i]!) * w.data[i]!;
        return partIndices(w.shape, p).map((i) => ({ data: w.data, i, w: w.data[i]!, d: dir(i) }));
      });
      const at = (eps: number) => {
        for (const x of elems) x.data[x.i] = x.w + eps * x.d;
        const l = contrastiveLoss(model, b);
        for (const x of elems) x.data[x.i] = x.w;
        return l;
      };
      fd += (at(h) - at(-h)) / (2 * h) / batches.length;
    });
    const v = got.get(moduleKey(m))!;
    assert.ok(fd > 0 && Math.abs(v - fd) <= 1e-3 * fd, `${moduleKey(m)}: taylor ${v}, finite differences ${fd}`);
    t.diagnostic(`${moduleKey(m)}: taylor ${v.toFixed(6)}, finite differences ${fd.toFixed(6)}`);
  }
});

/**
 * A layer's weights include all of its heads' and FFN groups' weights (disjoint runs), and Σ|w·g| over a superset
 * is at least the sum over its parts: layer score ≥ Σ heads (and ≥ Σ FFN groups), strictly when it has more.
 */
function assertLayerCoversParts(mods: ScoreEntry[]): void {
  const layers = mods.filter((m) => m.kind === 'layer');
  assert.ok(layers.length > 0);
  for (const L of layers) {
    for (const kind of ['head', 'ffn'] as const) {
      const parts = mods.filter((m) => m.kind === kind && m.tower === L.tower && m.layer === L.layer);
      if (parts.length === 0) continue;
      const sum = parts.reduce((a, m) => a + m.taylor!, 0);
      assert.ok(L.taylor! > sum, `${moduleKey(L)}: ${L.taylor}, not above the sum ${sum} over its ${kind} modules`);
    }
  }
}

test('score run with --metric taylor writes a complete, valid scores file', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const model = tinyModel();
  const out = join(dir, 'taylor.json');
  const f = runScore(rt, model, calibration('retrieval', 8), {
    out,
    modelPath: 'tiny',
    data: 'x',
    zeroshotData: null,
    limit: null,
    task: null,
    metric: 'taylor',
    seed: 0,
    towers: ['vision', 'text'],
    kinds: ['head', 'ffn', 'layer'],
    ffnGroupSize: 16,
    shard: null,
    resume: false,
    batch: 4,
  });
  assert.ok(f.complete);
  const back = readScoresFile(out);
  assert.equal(back.metric, 'taylor');
  // Every module's written score is taylorScores of that module (checked against finite differences above).
  // Per layer: text 4 heads, 3 FFN groups of 16 and the layer; vision 3, 3 and 1.
  assert.equal(back.modules.length, 3 * (4 + 3 + 1) + 3 * (3 + 3 + 1));
  const want = taylorScores(rt, model, calibration('retrieval', 8), back.modules, { batch: 4, ffnGroupSize: 16 });
  for (const m of back.modules) {
    const w = want.get(moduleKey(m))!;
    assert.ok(w > 0 && m.taylor === w, `${moduleKey(m)}: file ${m.taylor}, taylorScores ${w}`);
    assert.equal(typeof m.magnitude, 'number');
  }
  assertLayerCoversParts(back.modules);
  assert.throws(
    () =>
      runScore(rt, model, null, {
        out: join(dir, 'x.json'),
        modelPath: 'tiny',
        data: null,
        zeroshotData: null,
        limit: null,
        task: null,
        metric: 'taylor',
        seed: 0,
        towers: ['vision'],
        kinds: ['head'],
        ffnGroupSize: 16,
        shard: null,
        resume: false,
      }),
    /taylor needs calibration/,
  );
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
  await run([
    'score',
    '--model',
    dir,
    '--metric',
    'taylor',
    '--data',
    'builtin:fashion-scenes:test',
    '--limit',
    '8',
    '--batch',
    '4',
    '--tower',
    'both',
    '--granularity',
    'heads,layers',
    '--out',
    out,
    '--threads',
    '1',
  ]);
  const f = readScoresFile(out);
  assert.equal(f.modules.length, 2 * (2 * 4 + 2));
  // The same scores from the library on the same calibration pairs and the same compute (makeRuntime, 1 thread).
  const model = loadCheckpoint(dir);
  const cal = await loadCalibration(model, {
    modelDir: dir,
    task: 'retrieval',
    data: 'builtin:fashion-scenes:test',
    limit: 8,
    seed: 0,
    batch: 4,
  });
  const want = taylorScores(makeRuntime({ threads: 1 }), model, cal, f.modules, {
    batch: 4,
    ffnGroupSize: f.ffn_group_size,
  });
  for (const m of f.modules) {
    const w = want.get(moduleKey(m))!;
    assert.ok(w > 0 && Math.abs(m.taylor! - w) <= 1e-9 * w, `${moduleKey(m)}: CLI ${m.taylor}, library ${w}`);
  }
  assertLayerCoversParts(f.modules);
  await assert.rejects(
    run(['score', '--model', dir, '--metric', 'taylor', '--out', join(dir, 'y.json')]),
    /taylor needs --data/,
  );
});
