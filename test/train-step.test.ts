// Optimiser and training-step behaviour: schedule, clipping, weight-decay groups, logit_scale clamp, SGD, state
// round trip, gradient accumulation, non-finite loss. Dims (tiny): text C 16, L 2, vision C 16, L 2, E 8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { configFromGeometry, initFromConfig } from '../src/model/init.ts';
import type { ClipModel } from '../src/model/types.ts';
import { createGrads, decays, gradsByName, paramList, zeroGrads } from '../src/model/grads.ts';
import { MAX_LOGIT_SCALE, Optimizer, clipGradNorm, gradNorm, learningRate } from '../src/train/optim.ts';
import { NonFiniteLossError, TrainStep, accumulateStep, type TrainBatch } from '../src/train/step.ts';
import { CheckpointError, ConfigError } from '../src/errors.ts';
import { Rng } from '../src/model/rng.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };

function tinyModel(seed = 3): ClipModel {
  const c = configFromGeometry({
    text: { hidden: 16, layers: 2, heads: 4, ffn: 24, vocabSize: 50, maxPositions: 8 },
    vision: { hidden: 16, layers: 2, heads: 2, ffn: 20, imageSize: 8, patchSize: 4 },
    projectionDim: 8,
  });
  c.text.bosTokenId = 48;
  c.text.eosTokenId = 49;
  return initFromConfig(c, seed, { std: 0.3, perturbNorms: true });
}

function batch(seed: number, B = 3, T = 5): TrainBatch {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * T).fill(49),
    am = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = 2 + (b % (T - 1));
    ids[b * T] = 48;
    for (let t = 1; t < len - 1; t++) ids[b * T + t] = rng.int(47);
    for (let t = 0; t < len; t++) am[b * T + t] = 1;
  }
  const pixels = new Float32Array(B * 3 * 64);
  rng.fillNormal(pixels, 0, 1);
  return { B, T, ids, attentionMask: am, pixels };
}

test('learningRate: linear warmup, then cosine at progress (s − 1 − warmup)/(total − warmup); no step at minLr', () => {
  const c = { lr: 1, warmup: 2, totalSteps: 6, minLr: 0.1 };
  assert.equal(learningRate(c, 1), 0.5);
  assert.equal(learningRate(c, 2), 1);
  assert.equal(learningRate(c, 3), 1); // first step after warm-up at the peak
  assert.ok(Math.abs(learningRate(c, 5) - (0.1 + 0.9 * 0.5)) < 1e-12); // p = 2/4
  assert.ok(learningRate(c, 6) > 0.1 + 1e-3); // the last step still trains
  assert.equal(learningRate({ lr: 0.5, warmup: 0, totalSteps: 1, minLr: 0 }, 1), 0.5);
  assert.equal(learningRate({ lr: 2, warmup: 0, totalSteps: 0, minLr: 0 }, 100), 2);
});

test('a one-step SGD run (warmup 0, totalSteps 1) moves every weight by exactly −lr·grad', () => {
  const m = tinyModel(),
    g = createGrads(m.config),
    ps = paramList(m, g);
  const step = new TrainStep(rt, { student: m, grads: g });
  const opt = new Optimizer(rt, ps, { optimizer: 'sgd', lr: 0.5, weightDecay: 0, warmup: 0, totalSteps: 1 });
  const before = new Map(ps.map((p) => [p.name, Float32Array.from(p.param)]));
  zeroGrads(m.config, g);
  step.forwardBackward(batch(1));
  const grads = new Map(ps.map((p) => [p.name, Float32Array.from(p.grad)]));
  const info = opt.stepOnce();
  assert.equal(info.lr, 0.5);
  let moved = 0;
  for (const p of ps) {
    const b = before.get(p.name)!,
      gr = grads.get(p.name)!;
    p.param.forEach((v, i) => {
      const want = Math.fround(b[i]! - Math.fround(0.5 * gr[i]!));
      if (p.name === 'logit_scale') return assert.equal(v, Math.min(want, Math.fround(MAX_LOGIT_SCALE)));
      assert.ok(Math.abs(v - want) <= 1e-7 * (1 + Math.abs(want)), `${p.name}[${i}]: ${b[i]} − 0.5·${gr[i]} ≠ ${v}`);
      if (gr[i] !== 0) moved++;
    });
  }
  assert.ok(moved > 0);
});

test('weight-decay groups: none on biases, LayerNorm, token/position/class embeddings, logit_scale', () => {
  const no = [
    'logit_scale',
    'text_model.encoder.layers.0.mlp.fc1.bias',
    'vision_model.pre_layrnorm.weight',
    'vision_model.post_layernorm.weight',
    'text_model.final_layer_norm.weight',
    'text_model.encoder.layers.1.layer_norm2.weight',
    'text_model.embeddings.token_embedding.weight',
    'vision_model.embeddings.class_embedding',
    'vision_model.embeddings.position_embedding.weight',
  ];
  const yes = [
    'text_model.encoder.layers.0.self_attn.q_proj.weight',
    'visual_projection.weight',
    'vision_model.embeddings.patch_embedding.weight',
  ];
  for (const n of no) assert.equal(decays(n), false, n);
  for (const n of yes) assert.equal(decays(n), true, n);
  // with zero gradients AdamW moves only decaying parameters, by the factor (1 − lr·wd)
  const m = tinyModel(),
    g = createGrads(m.config),
    ps = paramList(m, g);
  const before = new Map(ps.map((p) => [p.name, Float32Array.from(p.param)]));
  new Optimizer(rt, ps, { lr: 0.1, weightDecay: 0.5 }).stepOnce();
  for (const p of ps) {
    const b = before.get(p.name)!;
    p.param.forEach((v, i) =>
      assert.ok(
        Math.abs(v - (p.decay ? b[i]! * 0.95 : b[i]!)) <= 1e-6 * (1 + Math.abs(v)),
        `${p.name}[${i}]: ${b[i]} → ${v}`,
      ),
    );
  }
});

test('clipping by global norm (0 = off), logit_scale clamp, SGD with momentum', () => {
  const m = tinyModel(),
    g = createGrads(m.config),
    ps = paramList(m, g);
  for (const p of ps) p.grad.fill(0.5);
  const n = gradNorm(rt, ps);
  assert.equal(clipGradNorm(rt, ps, 0), n);
  assert.equal(gradNorm(rt, ps), n);
  clipGradNorm(rt, ps, 1);
  assert.ok(Math.abs(gradNorm(rt, ps) - 1) < 1e-4);

  m.weights.logitScale[0] = MAX_LOGIT_SCALE - 0.01;
  zeroGrads(m.config, g);
  g.logitScale[0] = -1;
  new Optimizer(rt, ps, { lr: 1, weightDecay: 0 }).stepOnce();
  assert.equal(m.weights.logitScale[0], Math.fround(MAX_LOGIT_SCALE));

  const w = m.weights.text.projection,
    gw = g.text.projection,
    w0 = Float32Array.from(w);
  const sgd = new Optimizer(rt, ps, { optimizer: 'sgd', lr: 0.1, weightDecay: 0, momentum: 0.5 });
  gw.fill(1);
  sgd.stepOnce(); // buf = 1, p −= 0.1
  gw.fill(1);
  sgd.stepOnce(); // buf = 1.5, p −= 0.15
  w.forEach((v, i) => assert.ok(Math.abs(v - (w0[i]! - 0.25)) < 1e-6));
  assert.throws(() => new Optimizer(rt, ps, { optimizer: 'adam' as 'adamw' }), ConfigError);
});

test('optimiser state round trip: resuming from stateTensors continues exactly', () => {
  const run = (resumeAt: number | null) => {
    let m = tinyModel(),
      g = createGrads(m.config);
    let opt = new Optimizer(rt, paramList(m, g), { lr: 1e-2, warmup: 2, totalSteps: 6, gradClip: 1 });
    let step = new TrainStep(rt, { student: m, grads: g });
    for (let s = 0; s < 4; s++) {
      if (s === resumeAt) {
        const weights = [...gradsByName(m.config, m.weights)].map(([k, v]) => [k, Float32Array.from(v)] as const);
        const state = new Map([...opt.stateTensors()].map(([k, v]) => [k, Float32Array.from(v)]));
        m = tinyModel(99);
        g = createGrads(m.config);
        const live = gradsByName(m.config, m.weights);
        for (const [k, v] of weights) live.get(k)!.set(v);
        opt = new Optimizer(rt, paramList(m, g), { lr: 1e-2, warmup: 2, totalSteps: 6, gradClip: 1 });
        opt.loadStateTensors(state);
        step = new TrainStep(rt, { student: m, grads: g });
      }
      accumulateStep(step, opt, [batch(s)], () => zeroGrads(m.config, g));
    }
    assert.equal(opt.step, 4);
    return gradsByName(m.config, m.weights);
  };
  const straight = run(null),
    resumed = run(2);
  for (const [k, v] of straight) assert.deepEqual(resumed.get(k), v, k);
  const opt = new Optimizer(rt, paramList(tinyModel(), createGrads(tinyModel().config)));
  assert.throws(() => opt.loadStateTensors(new Map([['optim.step', new Float32Array([1])]])), CheckpointError);
});

test('gradient accumulation: k micro-batches at 1/k equal the mean of their gradients; loss parts averaged', () => {
  const m = tinyModel(),
    teacher = tinyModel(8);
  const one = (b: TrainBatch) => {
    const g = createGrads(m.config);
    const p = new TrainStep(rt, { student: m, teacher, grads: g }).forwardBackward(b);
    return { g: gradsByName(m.config, g), p };
  };
  const b1 = batch(1),
    b2 = batch(2, 2, 4);
  const r1 = one(b1),
    r2 = one(b2);
  const g = createGrads(m.config);
  const step = new TrainStep(rt, { student: m, teacher, grads: g });
  const opt = new Optimizer(rt, paramList(m, g), { lr: 0 });
  const acc = accumulateStep(step, opt, [b1, b2], () => zeroGrads(m.config, g));
  assert.ok(Math.abs(acc.loss.total - (r1.p.total + r2.p.total) / 2) < 1e-9);
  for (const [k, v] of gradsByName(m.config, g)) {
    const a = r1.g.get(k)!,
      b = r2.g.get(k)!;
    v.forEach((x, i) => assert.ok(Math.abs(x - (a[i]! + b[i]!) / 2) <= 1e-6 * (1 + Math.abs(x)), `${k}[${i}]`));
  }
});

test('a non-finite loss throws NonFiniteLossError before any gradient or weight changes', () => {
  const m = tinyModel(),
    g = createGrads(m.config);
  m.weights.logitScale[0] = NaN;
  const opt = new Optimizer(rt, paramList(m, g));
  const w0 = Float32Array.from(m.weights.vision.projection);
  assert.throws(
    () => accumulateStep(new TrainStep(rt, { student: m, grads: g }), opt, [batch(1)], () => zeroGrads(m.config, g)),
    NonFiniteLossError,
  );
  assert.deepEqual(m.weights.vision.projection, w0);
  assert.ok([...gradsByName(m.config, g).values()].every((a) => a.every((v) => v === 0)));
  assert.equal(opt.step, 0);
});

test('distillation refuses a teacher of another projection dim', () => {
  const s = tinyModel();
  const c = structuredClone(s.config);
  c.projectionDim = 4;
  const t = initFromConfig(c, 1);
  assert.throws(() => new TrainStep(rt, { student: s, teacher: t, grads: createGrads(s.config) }), /projection dim/);
});
