// Golden tests of training against tools/torch_clip_train.py (independent PyTorch autograd, float64) on the tiny
// teacher / pruned student in test/golden/train: every parameter gradient by HF name under L_con (with masks) and
// under the full distillation loss, and a 5-step AdamW trajectory. Dims: B pairs, T tokens, E projection dim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { referenceKernels } from '../src/engine/reference.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { readGolden } from './helpers/golden.ts';
import type { TowerMasks } from '../src/model/types.ts';
import { createGrads, gradsByName, paramList, zeroGrads } from '../src/model/grads.ts';
import { TrainStep, accumulateStep, type TrainBatch } from '../src/train/step.ts';
import { Optimizer } from '../src/train/optim.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), 'golden', 'train');

const golden = readGolden(join(ROOT, 'golden.safetensors'));

function get(name: string): Float64Array {
  const v = golden.f.get(name);
  assert.ok(v, `golden tensor ${name} missing; rerun tools/make_grad_golden.py`);
  return v;
}

/** Error of a tensor relative to its scale: max|a−b| / max(max|b|, floor). */
function relErr(a: Float32Array, b: Float64Array, floor = 1e-6): number {
  assert.equal(a.length, b.length);
  let d = 0,
    m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, floor);
}

function batch(): TrainBatch {
  const ids = golden.i.get('input_ids')!,
    am = golden.i.get('attention_mask')!;
  const [B, T] = golden.shape.get('input_ids')!;
  return { B: B!, T: T!, ids, attentionMask: Float32Array.from(am), pixels: Float32Array.from(get('pixel_values')) };
}

function masksFor(tower: 'text' | 'vision', L: number): TowerMasks {
  const f = (n: string) => Float32Array.from(get(n));
  return {
    heads: Array.from({ length: L }, (_, l) => f(`mask.${tower}.heads.${l}`)),
    ffn: Array.from({ length: L }, (_, l) => f(`mask.${tower}.ffn.${l}`)),
    layers: f(`mask.${tower}.layers`),
  };
}

const kernelSets: [string, () => Runtime][] = [
  ['native', () => ({ kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger })],
  ['reference', () => ({ kernels: referenceKernels, threads: 1, seed: 0, log: silentLogger })],
];
const TOL = Number(process.env.GOLDEN_GRAD_TOL ?? 1e-4);

/**
 * Compares every gradient by name, relative to the tensor's own scale floored at 1e-3 of the largest gradient of
 * the model (the k_proj bias gradient is analytically zero: softmax ignores a per-query constant, so both sides
 * hold only rounding noise there). Golden zeros (masked modules) must be exact zeros here too.
 */
function compareGrads(ours: Map<string, Float32Array>, prefix: string): number {
  let worst = 0,
    worstName = '',
    global = 0;
  for (const name of ours.keys()) for (const v of get(`${prefix}${name}`)) global = Math.max(global, Math.abs(v));
  for (const [name, a] of ours) {
    const b = get(`${prefix}${name}`);
    const e = relErr(a, b, 1e-3 * global);
    if (e > worst) {
      worst = e;
      worstName = name;
    }
    assert.ok(e <= TOL, `${name}: gradient error ${e.toExponential(2)} relative to its scale > ${TOL}`);
    if (name.endsWith('k_proj.bias')) continue;
    for (let i = 0; i < a.length; i++) {
      if (b[i] === 0 && a[i] !== 0)
        assert.fail(`${name}[${i}]: golden gradient is exactly 0 (masked / unused) but ours is ${a[i]}`);
    }
  }
  assert.equal(ours.size, [...golden.f.keys()].filter((k) => k.startsWith(prefix)).length, 'gradient name sets differ');
  if (process.env.GOLDEN_VERBOSE) console.log(`${prefix} worst ${worst.toExponential(2)} at ${worstName}`);
  return worst;
}

for (const [kname, mk] of kernelSets) {
  test(`golden grads (${kname}): L_con of the masked model, every parameter by name`, () => {
    const rt = mk();
    const model = loadCheckpoint(join(ROOT, 'teacher'));
    const grads = createGrads(model.config);
    const L = model.config.text.heads.length,
      Lv = model.config.vision.heads.length;
    const step = new TrainStep(rt, {
      student: model,
      grads,
      masks: { text: masksFor('text', L), vision: masksFor('vision', Lv) },
    });
    const parts = step.forwardBackward(batch());
    assert.ok(
      Math.abs(parts.con - get('con.loss')[0]!) <= 1e-5 * Math.abs(get('con.loss')[0]!),
      `L_con ${parts.con} vs ${get('con.loss')[0]}`,
    );
    compareGrads(gradsByName(model.config, grads), 'con.grad.');
  });

  test(`golden grads (${kname}): distillation loss of a width- and depth-pruned student, every parameter by name`, () => {
    const rt = mk();
    const teacher = loadCheckpoint(join(ROOT, 'teacher'));
    const student = loadCheckpoint(join(ROOT, 'student'));
    assert.deepEqual(student.config.text.layerMap, [0, 2]);
    const grads = createGrads(student.config);
    const step = new TrainStep(rt, {
      student,
      teacher,
      grads,
      loss: { wCon: 0.5, wKd: 1.5, wEmb: 2, wHid: 0.7, temperature: 2 },
    });
    const parts = step.forwardBackward(batch());
    for (const k of ['total', 'con', 'kd', 'emb', 'hid'] as const) {
      const want = get(`dist.loss.${k}`)[0]!;
      assert.ok(Math.abs(parts[k] - want) <= 1e-5 * Math.abs(want), `${k}: ${parts[k]} vs golden ${want}`);
    }
    compareGrads(gradsByName(student.config, grads), 'dist.grad.');
  });
}

for (const [kname, mk] of kernelSets) {
  test(`golden grads (${kname}): each loss weight scales its own term (w·golden gradient of that term alone, by name)`, () => {
    const rt = mk();
    const teacher = loadCheckpoint(join(ROOT, 'teacher'));
    const student = loadCheckpoint(join(ROOT, 'student'));
    const keys = { con: 'wCon', kd: 'wKd', emb: 'wEmb', hid: 'wHid' } as const;
    for (const [term, key] of Object.entries(keys) as [keyof typeof keys, (typeof keys)[keyof typeof keys]][]) {
      const w = 2.5;
      const grads = createGrads(student.config);
      const loss = { wCon: 0, wKd: 0, wEmb: 0, wHid: 0, temperature: 2, [key]: w };
      const parts = new TrainStep(rt, { student, teacher, grads, loss }).forwardBackward(batch());
      const want = get(`dist.loss.${term}`)[0]!;
      assert.ok(
        Math.abs(parts.total - w * want) <= 1e-5 * Math.abs(w * want),
        `${term}: total ${parts.total} vs ${w}·${want}`,
      );
      const scaled = new Map([...gradsByName(student.config, grads)].map(([n, g]) => [n, g.map((x) => x / w)]));
      compareGrads(scaled, `term.${term}.grad.`);
    }
  });
}

test('golden AdamW trajectory: 5 steps with warmup + cosine, decay groups, clipping, logit_scale clamp', () => {
  const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };
  const model = loadCheckpoint(join(ROOT, 'teacher'));
  const grads = createGrads(model.config);
  const params = paramList(model, grads);
  const opt = new Optimizer(rt, params, {
    optimizer: 'adamw',
    lr: 1e-3,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-6,
    warmup: 2,
    totalSteps: 5,
    gradClip: 1,
  });
  const step = new TrainStep(rt, { student: model, grads });
  const losses = get('traj.loss'),
    lrs = get('traj.lr'),
    norms = get('traj.gradnorm');
  const b = batch();
  for (let s = 0; s < 5; s++) {
    const r = accumulateStep(step, opt, [b], () => zeroGrads(model.config, grads));
    assert.ok(
      Math.abs(r.loss.total - losses[s]!) <= 1e-5 * Math.max(1, Math.abs(losses[s]!)),
      `step ${s + 1}: loss ${r.loss.total} vs ${losses[s]}`,
    );
    assert.ok(Math.abs(r.info.lr - lrs[s]!) <= 1e-12, `step ${s + 1}: lr ${r.info.lr} vs ${lrs[s]}`);
    assert.ok(
      Math.abs(r.info.gradNorm - norms[s]!) <= 1e-4 * norms[s]!,
      `step ${s + 1}: grad norm ${r.info.gradNorm} vs ${norms[s]}`,
    );
  }
  let worst = 0,
    at = '';
  for (const p of params) {
    const want = get(`traj.final.${p.name}`);
    for (let i = 0; i < want.length; i++) {
      const e = Math.abs(p.param[i]! - want[i]!);
      if (e > worst) {
        worst = e;
        at = `${p.name}[${i}]`;
      }
    }
  }
  if (process.env.GOLDEN_VERBOSE)
    console.log(`trajectory: worst final-weight difference ${worst.toExponential(2)} at ${at}`);
  assert.ok(worst <= 1e-5, `final weights differ from PyTorch's by up to ${worst.toExponential(2)} (at ${at}) > 1e-5`);
});
