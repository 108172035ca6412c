// Finite-difference checks of the layer backward, both tower backwards (masks, hidden-state gradients, padding)
// and every loss; masked modules get exactly zero gradient; frozen towers are untouched.
// Dims (tiny): text C 16, L 3, NH 4, HS 4, F 24, V 50, T ≤ 8; vision C 16, L 2, NH 2, F 20, image 8, P 4 (T 5); E 8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { referenceKernels } from '../src/engine/reference.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { configFromGeometry, initFromConfig } from '../src/model/init.ts';
import type { ClipModel, TowerMasks } from '../src/model/types.ts';
import { layerForward, type LayerMasks } from '../src/model/layer.ts';
import { Workspace } from '../src/model/workspace.ts';
import { textTape, tapeHidden } from '../src/model/tape.ts';
import { textForwardTrain, visionForwardTrain } from '../src/model/train-forward.ts';
import { BackwardScratch, layerBackward, textBackward, visionBackward } from '../src/model/backward.ts';
import { createGrads, gradsByName, zeroGrads } from '../src/model/grads.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import {
  contrastiveLoss,
  distillationLoss,
  embeddingLoss,
  hiddenLoss,
  kdLoss,
  mapLayers,
  type PairEmbeddings,
} from '../src/distill/losses.ts';
import { TrainStep } from '../src/train/step.ts';
import { Rng } from '../src/model/rng.ts';

const native: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };
const reference: Runtime = { kernels: referenceKernels, threads: 1, seed: 0, log: silentLogger };

function tinyModel(seed = 3): ClipModel {
  const c = configFromGeometry({
    text: { hidden: 16, layers: 3, heads: 4, ffn: 24, vocabSize: 50, maxPositions: 8 },
    vision: { hidden: 16, layers: 2, heads: 2, ffn: 20, imageSize: 8, patchSize: 4, act: 'gelu' },
    projectionDim: 8,
  });
  c.text.bosTokenId = 48;
  c.text.eosTokenId = 49;
  return initFromConfig(c, seed, { std: 0.3, perturbNorms: true });
}

const rand = (n: number, seed: number, s = 1) => {
  const a = new Float32Array(n);
  new Rng(seed).fillNormal(a, 0, s);
  return a;
};
const dot = (a: Float32Array, b: Float32Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Indices to probe in a tensor: the largest-gradient entry plus a few spread ones. */
function probes(g: Float32Array, k = 3): number[] {
  let best = 0;
  for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[best]!)) best = i;
  const out = new Set([best]);
  for (let j = 1; j <= k && j < g.length; j++) out.add(Math.floor((j * 7919) % g.length));
  return [...out];
}

/**
 * Central differences of loss() w.r.t. arr[i] against the analytic gradient. The forward runs in f32, so eps is
 * large and the tolerance is 3e-3 of the tensor's largest gradient (floored at 1e-2) plus 1e-4; a 1 % error in
 * one gradient term fails it.
 */
function fdCheck(
  what: string,
  arr: Float32Array,
  grad: Float32Array,
  loss: () => number,
  idx = probes(grad),
  eps = 1e-2,
): void {
  if (what.endsWith('self_attn.k_proj.bias')) {
    // Softmax is invariant to adding one constant to all of a query's scores, and the key bias adds q·b_k to every
    // score of query q: its true gradient is exactly zero. A finite difference sees only the f32 forward's rounding
    // noise there (about 2e-4 at eps 1e-2 on some CPUs), so the claim checked is the exact one: analytic ≈ 0.
    for (let i = 0; i < grad.length; i++)
      assert.ok(Math.abs(grad[i]!) <= 1e-5, `${what}[${i}]: analytic ${grad[i]} should be 0`);
    return;
  }
  let scale = 0;
  for (const v of grad) scale = Math.max(scale, Math.abs(v));
  for (const i of idx) {
    const x = arr[i]!;
    arr[i] = x + eps;
    const lp = loss();
    arr[i] = x - eps;
    const lm = loss();
    arr[i] = x;
    const fd = (lp - lm) / (2 * eps);
    const tol = 3e-3 * Math.max(scale, 1e-2) + 1e-4;
    assert.ok(
      Math.abs(fd - grad[i]!) <= tol,
      `${what}[${i}]: finite difference ${fd} vs analytic ${grad[i]} (tolerance ${tol.toExponential(1)})`,
    );
  }
}

for (const [kname, rt] of [
  ['native', native],
  ['reference', reference],
] as const) {
  test(`layer backward (${kname}): finite differences with head / FFN masks and a fractional layer scale`, () => {
    const model = tinyModel();
    const cfg = model.config.text,
      lw = model.weights.text.layers[1]!,
      l = 1;
    const B = 2,
      T = 5,
      N = B * T,
      C = cfg.hidden;
    const x0 = rand(N * C, 11),
      r = rand(N * C, 12);
    const ffnMask = new Float32Array(cfg.ffn[l]!).fill(1);
    ffnMask[3] = 0;
    ffnMask[5] = 0.5;
    const m: LayerMasks = { heads: new Float32Array([1, 0, 0.5, 1]), ffn: ffnMask, scale: 0.7 };
    const keyMask = new Float32Array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    const ws = new Workspace();
    ws.ensure(cfg, N);
    const run = (tape?: ReturnType<typeof textTape>) => {
      const x = Float32Array.from(x0);
      tape?.layers[l]!.xIn.set(x);
      layerForward(rt.kernels, cfg, lw, l, x, ws, B, T, true, keyMask, m, tape?.layers[l]);
      return x;
    };
    const tape = textTape(undefined, cfg, 8, B, T);
    const y = run(tape);
    assert.deepEqual(y, run(), 'the tape does not change the forward');
    const g = createGrads(model.config).text.layers[l]!;
    const dx = Float32Array.from(r);
    const sc = new BackwardScratch();
    sc.ensure(cfg, N);
    layerBackward(rt.kernels, cfg, lw, g, l, dx, tape.layers[l]!, B, T, m, sc);
    const loss = () => dot(run(), r);
    fdCheck('dx', x0, dx, loss, [0, 17, 40, 77, 150]);
    for (const key of Object.keys(lw) as (keyof typeof lw)[]) fdCheck(key, lw[key], g[key], loss);
    // masked head 1 and masked neuron 3: exactly zero gradient
    const D = cfg.heads[l]! * cfg.headDim,
      HS = cfg.headDim;
    for (let part = 0; part < 3; part++) {
      for (let row = part * D + HS; row < part * D + 2 * HS; row++) {
        assert.ok(
          g.qkvW.subarray(row * C, (row + 1) * C).every((v) => v === 0),
          `qkv row ${row} of masked head has gradient`,
        );
        assert.equal(g.qkvB[row], 0);
      }
    }
    for (let c = 0; c < C; c++) for (let e = HS; e < 2 * HS; e++) assert.equal(g.outW[c * D + e], 0);
    assert.ok(
      g.fc1W.subarray(3 * C, 4 * C).every((v) => v === 0) && g.fc1B[3] === 0,
      'masked neuron fc1 row has gradient',
    );
    for (let c = 0; c < C; c++) assert.equal(g.fc2W[c * cfg.ffn[l]! + 3], 0);
  });
}

test('layer backward: scale 0 (masked layer) leaves dx and every gradient untouched; zero-width branches pass bias gradients', () => {
  const model = tinyModel();
  const cfg = structuredClone(model.config.text);
  const lw = model.weights.text.layers[0]!;
  const B = 1,
    T = 4,
    N = B * T,
    C = cfg.hidden;
  const tape = textTape(undefined, cfg, 8, B, T);
  const g = createGrads(model.config).text.layers[0]!;
  const sc = new BackwardScratch();
  sc.ensure(cfg, N);
  const dx = rand(N * C, 5),
    before = Float32Array.from(dx);
  layerBackward(native.kernels, cfg, lw, g, 0, dx, tape.layers[0]!, B, T, { heads: null, ffn: null, scale: 0 }, sc);
  assert.deepEqual(dx, before);
  for (const a of Object.values(g)) assert.ok(a.every((v: number) => v === 0));
  // a layer with no heads and no neurons: x + s·outB + s·fc2B; gradients are column sums, dx unchanged
  cfg.heads[0] = 0;
  cfg.ffn[0] = 0;
  layerBackward(native.kernels, cfg, lw, g, 0, dx, tape.layers[0]!, B, T, { heads: null, ffn: null, scale: 0.5 }, sc);
  assert.deepEqual(dx, before);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += before[n * C + c]!;
    assert.ok(Math.abs(g.outB[c]! - 0.5 * s) < 1e-5 && Math.abs(g.fc2B[c]! - 0.5 * s) < 1e-5);
  }
});

const textMasks = (): TowerMasks => ({
  heads: [new Float32Array([1, 0, 1, 1]), new Float32Array([0.5, 1, 1, 1]), new Float32Array([1, 1, 1, 1])],
  ffn: [new Float32Array(24).fill(1).fill(0, 0, 4), new Float32Array(24).fill(1), new Float32Array(24).fill(0.5)],
  layers: new Float32Array([1, 0.6, 0]),
});

test('text tower backward: finite differences of every parameter, with padding, masks and hidden-state gradients', () => {
  const rt = native,
    model = tinyModel(),
    cfg = model.config.text;
  const B = 3,
    T = 6,
    E = model.config.projectionDim,
    C = cfg.hidden,
    L = cfg.heads.length;
  const ids = new Int32Array([48, 5, 7, 9, 11, 49, 48, 3, 49, 49, 49, 49, 48, 1, 2, 49, 30, 31]);
  const am = new Float32Array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
  const masks = textMasks();
  const r = rand(B * E, 21),
    q = Array.from({ length: L }, (_, j) => rand(B * T * C, 30 + j, 0.3));
  const loss = () => {
    const tp = textForwardTrain(rt, model, ids, B, T, undefined, { masks, attentionMask: am });
    let s = dot(tp.head.embeds, r);
    for (let j = 0; j < L; j++) s += dot(tapeHidden(tp, j), q[j]!);
    return s;
  };
  const tape = textForwardTrain(rt, model, ids, B, T, undefined, { masks, attentionMask: am });
  const grads = createGrads(model.config);
  textBackward(rt, model, tape, r, grads.text, { dHidden: q });
  const sd = toStateDict(model),
    gd = gradsByName(model.config, grads);
  for (const [name, t] of sd) {
    if (!name.startsWith('text_model.') && name !== 'text_projection.weight') continue;
    fdCheck(name, t.data, gd.get(name)!, loss);
  }
  // token rows of ids in the batch get gradient, others none; layer 2 (scale 0) and masked modules get none
  const tok = grads.text.tokenEmbedding;
  assert.ok(
    tok.subarray(20 * C, 21 * C).every((v) => v === 0),
    'unused token row has gradient',
  );
  assert.ok(tok.subarray(5 * C, 6 * C).some((v) => v !== 0));
  for (const a of Object.values(grads.text.layers[2]!))
    assert.ok(
      a.every((v: number) => v === 0),
      'masked layer has gradient',
    );
  const g0 = grads.text.layers[0]!,
    HS = cfg.headDim;
  assert.ok(
    g0.qkvW.subarray(HS * C, 2 * HS * C).every((v) => v === 0),
    'masked head has gradient',
  );
  assert.ok(
    g0.fc1W.subarray(0, 4 * C).every((v) => v === 0),
    'masked neurons have gradient',
  );
  // accumulate: a second backward doubles every gradient
  const once = Float32Array.from(grads.text.layers[1]!.fc1W);
  textBackward(rt, model, tape, r, grads.text, { dHidden: q });
  grads.text.layers[1]!.fc1W.forEach((v, i) => assert.ok(Math.abs(v - 2 * once[i]!) <= 1e-6 * (1 + Math.abs(v))));
});

test('vision tower backward: finite differences of every parameter (patch, class, position embeddings, pre/post LN)', () => {
  const rt = native,
    model = tinyModel(),
    v = model.config.vision;
  const B = 2,
    E = model.config.projectionDim,
    C = v.hidden,
    L = v.heads.length,
    T = 5;
  const px = rand(B * 3 * 8 * 8, 41);
  const masks: TowerMasks = {
    heads: [new Float32Array([1, 0.5]), new Float32Array([0, 1])],
    layers: new Float32Array([1, 0.8]),
  };
  const r = rand(B * E, 42),
    q = Array.from({ length: L }, (_, j) => rand(B * T * C, 50 + j, 0.3));
  const loss = () => {
    const tp = visionForwardTrain(rt, model, px, B, undefined, { masks });
    let s = dot(tp.head.embeds, r);
    for (let j = 0; j < L; j++) s += dot(tapeHidden(tp, j), q[j]!);
    return s;
  };
  const tape = visionForwardTrain(rt, model, px, B, undefined, { masks });
  const grads = createGrads(model.config);
  visionBackward(rt, model, tape, r, grads.vision, { dHidden: q });
  const gd = gradsByName(model.config, grads);
  for (const [name, t] of toStateDict(model)) {
    if (!name.startsWith('vision_model.') && name !== 'visual_projection.weight') continue;
    fdCheck(name, t.data, gd.get(name)!, loss);
  }
});

// ---- losses

function pair(seed: number, B: number, E: number, s: number): PairEmbeddings {
  return { image: rand(B * E, seed), text: rand(B * E, seed + 1), logitScale: s };
}

/** FD over the student's image, text and logit scale for a loss returning {value, dImage, dText, dLogitScale}. */
function lossFd(
  what: string,
  st: PairEmbeddings,
  f: () => { value: number; dImage: Float32Array; dText: Float32Array; dLogitScale: number },
): void {
  const r = f();
  const v = () => f().value;
  fdCheck(`${what} dImage`, st.image, r.dImage, v, [0, 3, 9, 14, 22], 1e-3);
  fdCheck(`${what} dText`, st.text, r.dText, v, [1, 4, 10, 15, 23], 1e-3);
  const s0 = st.logitScale,
    eps = 1e-4;
  st.logitScale = s0 + eps;
  const lp = v();
  st.logitScale = s0 - eps;
  const lm = v();
  st.logitScale = s0;
  assert.ok(
    Math.abs((lp - lm) / (2 * eps) - r.dLogitScale) <= 1e-3 * (1 + Math.abs(r.dLogitScale)),
    `${what} dLogitScale`,
  );
}

test('losses: L_con, L_kd (τ = 2), L_emb by finite differences through the L2 normalisation', () => {
  const B = 4,
    E = 6,
    rt = native;
  const st = pair(60, B, E, 1.2),
    te = pair(70, B, E, 1.8);
  lossFd('L_con', st, () => contrastiveLoss(rt, st, B, E));
  lossFd('L_kd', st, () => kdLoss(rt, st, te, B, E, 2));
  lossFd('L_emb', st, () => embeddingLoss(rt, st, te, B, E));
  assert.equal(embeddingLoss(rt, st, te, B, E).dLogitScale, 0);
  // identical student and teacher: L_kd = L_emb = 0 with zero gradient
  const same = kdLoss(rt, te, te, B, E, 3);
  assert.ok(Math.abs(same.value) < 1e-9 && same.dImage.every((x) => Math.abs(x) < 1e-6));
  // combined: parts weighted as documented, gradient = weighted sum of the parts' gradients
  const w = { wCon: 0.3, wKd: 2, wEmb: 0.7, wHid: 5, temperature: 2 };
  const d = distillationLoss(rt, { student: st, teacher: te }, B, E, w);
  const c = contrastiveLoss(rt, st, B, E),
    k = kdLoss(rt, st, te, B, E, 2),
    e = embeddingLoss(rt, st, te, B, E);
  assert.ok(Math.abs(d.total - (0.3 * c.value + 2 * k.value + 0.7 * e.value)) < 1e-9);
  d.dImage.forEach((v, i) =>
    assert.ok(Math.abs(v - (0.3 * c.dImage[i]! + 2 * k.dImage[i]! + 0.7 * e.dImage[i]!)) < 1e-5),
  );
  assert.ok(Math.abs(d.dLogitScale - (0.3 * c.dLogitScale + 2 * k.dLogitScale)) < 1e-6);
});

test('losses: L_hid by finite differences; text rows count BOS…EOS only; mean over towers and layer pairs', () => {
  const B = 2,
    T = 4,
    C = 3;
  const text = {
    B,
    T,
    C,
    student: [rand(24, 80), rand(24, 81)],
    teacher: [rand(24, 82), rand(24, 83)],
    lengths: new Int32Array([2, 4]),
  };
  const vision = { B, T: 3, C, student: [rand(18, 84)], teacher: [rand(18, 85)] };
  const r = hiddenLoss([text, vision]);
  // direct value
  let t = 0;
  for (let j = 0; j < 2; j++) {
    let s = 0;
    for (let b = 0; b < B; b++)
      for (let p = 0; p < text.lengths[b]!; p++)
        for (let c = 0; c < C; c++) {
          const i = (b * T + p) * C + c;
          s += (text.student[j]![i]! - text.teacher[j]![i]!) ** 2;
        }
    t += s / (6 * C) / 2;
  }
  let v = 0;
  for (let i = 0; i < 18; i++) v += (vision.student[0]![i]! - vision.teacher[0]![i]!) ** 2;
  assert.ok(Math.abs(r.value - (t + v / 18) / 2) < 1e-6, `L_hid ${r.value}`);
  assert.ok(
    r.dHidden[0]![0]!.subarray(2 * C, 4 * C).every((x) => x === 0),
    'positions after EOS get gradient',
  );
  fdCheck(
    'L_hid text',
    text.student[1]!,
    r.dHidden[0]![1]!,
    () => hiddenLoss([text, vision]).value,
    [0, 5, 13, 20],
    1e-3,
  );
  fdCheck(
    'L_hid vision',
    vision.student[0]!,
    r.dHidden[1]![0]!,
    () => hiddenLoss([text, vision]).value,
    [0, 7, 17],
    1e-3,
  );
});

test('mapLayers: kept layers map to the teacher layer of the same original index; a foreign student is refused', () => {
  const t = tinyModel().config.text;
  const s = { ...structuredClone(t), heads: [4, 2], ffn: [24, 10], layerMap: [0, 2] };
  assert.deepEqual(mapLayers(s, t, 'text'), [0, 2]);
  assert.throws(() => mapLayers({ ...s, layerMap: [0, 5] }, t, 'text'), /not derived from this teacher/);
  assert.throws(() => mapLayers({ ...s, hidden: 32 }, t, 'text'), /hidden size 32 differs/);
});

test('frozen tower: TrainStep leaves its gradients at zero; masked modules of the trained tower get none', () => {
  const student = tinyModel(3),
    teacher = tinyModel(4);
  const grads = createGrads(student.config);
  const B = 2,
    T = 4;
  const batch = {
    B,
    T,
    ids: new Int32Array([48, 3, 4, 49, 48, 9, 49, 49]),
    attentionMask: new Float32Array([1, 1, 1, 1, 1, 1, 1, 0]),
    pixels: rand(B * 192, 90),
  };
  const step = new TrainStep(native, {
    student,
    teacher,
    grads,
    freeze: { text: true },
    masks: { vision: { layers: new Float32Array([0, 1]) } },
  });
  const parts = step.forwardBackward(batch);
  assert.ok(parts.kd > 0 && parts.emb > 0 && parts.hid > 0 && Number.isFinite(parts.total));
  for (const [name, g] of gradsByName(student.config, grads)) {
    const zero = g.every((v) => v === 0);
    if (name.startsWith('text_model.') || name === 'text_projection.weight')
      assert.ok(zero, `${name}: frozen tower has gradient`);
    else if (name.startsWith('vision_model.encoder.layers.0.')) assert.ok(zero, `${name}: masked layer has gradient`);
    else if (name === 'visual_projection.weight' || name === 'logit_scale') assert.ok(!zero, `${name}: no gradient`);
  }
  zeroGrads(student.config, grads);
  assert.ok([...gradsByName(student.config, grads).values()].every((g) => g.every((v) => v === 0)));
});
