// bf16 engine: the oneDNN GEMM against its naive TS twin, `auto` precision resolution with injected CPU features,
// bf16 against fp32 on linear layers and on whole-tower embeddings (cosine), and packed weights never going stale
// when an optimiser updates them (also through views of a fused buffer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { gemmDnnlReference } from '../src/engine/reference.ts';
import { loadDnnl, loadKernels, loadNativeKernels } from '../src/engine/native.ts';
import { bf16Kernels, parsePrecision, resolvePrecision, type DnnlKernels } from '../src/engine/precision.ts';
import type { Kernels } from '../src/engine/kernels.ts';
import { textForward, visionForward } from '../src/model/forward.ts';
import { createGrads, paramList, zeroGrads } from '../src/model/grads.ts';
import { Optimizer } from '../src/train/optim.ts';
import { TrainStep, accumulateStep } from '../src/train/step.ts';
import { configFromGeometry, initFromConfig } from '../src/model/init.ts';
import { encodeImages } from '../src/model/encode.ts';
import { cosine, maxRelDiff as maxRel } from './helpers/compare.ts';
import { lcgUniform } from './helpers/random.ts';

const rand = (n: number, seed: number) => lcgUniform(n, seed, -0.5, 0.5);

const dnnl = loadDnnl();

test('gemmDnnl equals its naive twin on awkward shapes, both transposes, bias, beta, fp32 and bf16', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [17, 13, 33],
    [31, 65, 9],
  ];
  let seed = 1;
  for (const [M, N, K] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const bf16 of [false, true]) {
          for (const beta of [0, 1]) {
            const a = rand(M * K, seed++),
              b = rand(K * N, seed++),
              bias = rand(N, seed++),
              c0 = rand(M * N, seed++);
            const got = c0.slice(),
              want = c0.slice();
            const scratch = new Uint16Array(M * K + K * N);
            dnnl.gemmDnnl(got, a, b, null, bias, scratch, M, N, K, transA, transB, beta, bf16);
            gemmDnnlReference(want, a, b, bias, M, N, K, transA, transB, beta, bf16);
            const err = maxRel(got, want);
            // Same bf16-rounded inputs on both sides: only fp32 summation order differs.
            assert.ok(err < 1e-5, `M${M} N${N} K${K} tA${transA} tB${transB} bf16 ${bf16} beta ${beta}: ${err}`);
          }
        }
      }
    }
  }
});

test('gemmDnnl with a packed weight equals the unpacked call', () => {
  const M = 19,
    N = 23,
    K = 37;
  for (const bf16 of [false, true]) {
    for (const transB of [false, true]) {
      const a = rand(M * K, 5),
        b = rand(K * N, 6);
      const packed = dnnl.packWeight(b, K, N, transB, bf16, M);
      const got = new Float32Array(M * N),
        want = new Float32Array(M * N);
      dnnl.gemmDnnl(got, a, null, packed, null, new Uint16Array(M * K), M, N, K, false, transB, 0, bf16);
      gemmDnnlReference(want, a, b, null, M, N, K, false, transB, 0, bf16);
      assert.ok(maxRel(got, want) < 1e-5, `bf16 ${bf16} transB ${transB}: ${maxRel(got, want)}`);
    }
  }
});

test('dnnlInfo names the instruction set oneDNN dispatches to', () => {
  const info = dnnl.dnnlInfo(false);
  assert.equal(typeof info.isa, 'string');
  assert.ok(info.isa.length > 0);
});

test('precision: auto is bf16 only with AMX-BF16 or AVX512-BF16, and says so once', () => {
  const said: string[] = [];
  const log = { info: (m: string) => void said.push(m), warn: () => {} };
  assert.equal(resolvePrecision('auto', new Set(['avx512f', 'avx512_bf16']), log), 'bf16');
  assert.equal(resolvePrecision('auto', new Set(['amx_bf16', 'amx_tile']), log), 'bf16');
  assert.equal(resolvePrecision('auto', new Set(['avx2', 'avx512f']), log), 'fp32');
  assert.equal(resolvePrecision('auto', new Set(), log), 'fp32');
  assert.equal(said.length, 4);
  assert.match(said[2]!, /fp32/);
  assert.equal(resolvePrecision('fp32', new Set(['avx512_bf16'])), 'fp32');
  assert.equal(resolvePrecision('bf16', new Set()), 'bf16');
  assert.equal(parsePrecision('bf16'), 'bf16');
  assert.throws(() => parsePrecision('fp16'), /--precision expects fp32, bf16 or auto, found "fp16"/);
});

test('bf16 linear forward and backward stay close to fp32 (cosine ≥ 0.999)', () => {
  const fp = loadNativeKernels(),
    bf = loadKernels('bf16');
  const N = 33,
    IC = 48,
    OC = 40;
  const inp = rand(N * IC, 11),
    w = rand(OC * IC, 12),
    bias = rand(OC, 13),
    dout = rand(N * OC, 14);
  const o32 = new Float32Array(N * OC),
    o16 = new Float32Array(N * OC);
  fp.linear(o32, inp, w, bias, N, IC, OC);
  bf.linear(o16, inp, w, bias, N, IC, OC);
  assert.ok(cosine(o16, o32) >= 0.999, `forward cosine ${cosine(o16, o32)}`);
  assert.ok(maxRel(o16, o32) > 1e-6, 'the bf16 kernels really round (they must not be the fp32 path)');
  const di32 = new Float32Array(N * IC),
    di16 = new Float32Array(N * IC);
  const dw32 = new Float32Array(OC * IC),
    dw16 = new Float32Array(OC * IC);
  const db32 = new Float32Array(OC),
    db16 = new Float32Array(OC);
  fp.linearBackward(di32, dw32, db32, dout, inp, w, N, IC, OC);
  bf.linearBackward(di16, dw16, db16, dout, inp, w, N, IC, OC);
  assert.ok(cosine(di16, di32) >= 0.999, `dinp cosine ${cosine(di16, di32)}`);
  assert.ok(cosine(dw16, dw32) >= 0.999, `dweight cosine ${cosine(dw16, dw32)}`);
  assert.ok(maxRel(db16, db32) < 1e-5, 'dbias is fp32 in both');
});

test('bf16 image embeddings within cosine 0.999 of fp32 on a small vision tower', () => {
  const c = configFromGeometry({
    text: { hidden: 32, layers: 2, heads: 4, ffn: 64, vocabSize: 1000, maxPositions: 16 },
    vision: { hidden: 64, layers: 3, heads: 4, ffn: 128, imageSize: 32, patchSize: 8, act: 'quick_gelu' },
    projectionDim: 32,
  });
  const model = initFromConfig(c, 3);
  const rt = (p: 'fp32' | 'bf16'): Runtime => ({
    kernels: loadKernels(p),
    threads: 1,
    seed: 0,
    log: silentLogger,
    precision: p,
  });
  const N = 4;
  const pixels = rand(N * 3 * 32 * 32, 21).map((x) => x * 4);
  const e32 = encodeImages(rt('fp32'), model, pixels, N);
  const e16 = encodeImages(rt('bf16'), model, pixels, N);
  const E = c.projectionDim;
  assert.ok(maxRel(e16, e32) > 1e-6, 'the bf16 run really went through bf16 GEMMs');
  for (let i = 0; i < N; i++) {
    const cs = cosine(e16.subarray(i * E, (i + 1) * E), e32.subarray(i * E, (i + 1) * E));
    assert.ok(cs >= 0.999, `image ${i}: cosine ${cs}`);
  }
});

test('MOPE_FP32_GEMM=onednn: fp32 linear through oneDNN agrees with OpenBLAS to fp32 rounding', async () => {
  const { bf16Kernels } = await import('../src/engine/precision.ts');
  const fp = loadNativeKernels(),
    dn = bf16Kernels(loadNativeKernels() as never, false);
  const N = 37,
    IC = 70,
    OC = 45;
  const inp = rand(N * IC, 31),
    w = rand(OC * IC, 32),
    bias = rand(OC, 33),
    dout = rand(N * OC, 34);
  const a = new Float32Array(N * OC),
    b = new Float32Array(N * OC);
  fp.linear(a, inp, w, bias, N, IC, OC);
  dn.linear(b, inp, w, bias, N, IC, OC);
  assert.ok(maxRel(b, a) < 1e-5, `forward ${maxRel(b, a)}`);
  const di = [new Float32Array(N * IC), new Float32Array(N * IC)],
    dw = [new Float32Array(OC * IC), new Float32Array(OC * IC)];
  fp.linearBackward(di[0]!, dw[0]!, null, dout, inp, w, N, IC, OC);
  dn.linearBackward(di[1]!, dw[1]!, null, dout, inp, w, N, IC, OC);
  assert.ok(maxRel(di[1]!, di[0]!) < 1e-5 && maxRel(dw[1]!, dw[0]!) < 1e-5, 'backward');
});

test('bf16: a weight an optimiser updated goes in unpacked and gives what the packed path gives', () => {
  const bf = loadKernels('bf16');
  const N = 29,
    IC = 40,
    OC = 52;
  const inp = rand(N * IC, 41),
    w = rand(OC * IC, 42),
    bias = rand(OC, 43),
    dout = rand(N * OC, 44);
  const run = () => {
    const o = new Float32Array(N * OC),
      di = new Float32Array(N * IC);
    bf.linear(o, inp, w, bias, N, IC, OC);
    bf.linearBackward(di, null, null, dout, inp, w, N, IC, OC);
    return [o, di];
  };
  const [o1, d1] = run(); // packed
  bf.scale(w, 1, OC * IC); // an in-place update: from now on unpacked
  const [o2, d2] = run();
  assert.ok(maxRel(o2!, o1!) < 1e-5 && maxRel(d2!, d1!) < 1e-5, `${maxRel(o2!, o1!)} ${maxRel(d2!, d1!)}`);
  w[0] = w[0]! + 1; // a later change is seen at once (nothing cached)
  const [o3] = run();
  assert.ok(maxRel(o3!, o2!) > 1e-3, 'the updated weight is used');
});

test('bf16: an optimiser step on a view (q of a fused qkv buffer) is seen by the next forward of the whole buffer', () => {
  const bf = bf16Kernels(loadDnnl() as Kernels & DnnlKernels);
  const fresh = () => bf16Kernels(loadDnnl() as Kernels & DnnlKernels); // no packs: the current weights
  const N = 23,
    C = 24;
  const inp = rand(N * C, 51),
    qkv = rand(3 * C * C, 52), // [3C, C]: q, k, v rows of one buffer, as the model stores them
    grad = rand(C * C, 53);
  const fwd = (k: Kernels) => {
    const o = new Float32Array(N * 3 * C);
    k.linear(o, inp, qkv, null, N, C, 3 * C);
    return o;
  };
  const before = fwd(bf); // packs the whole buffer
  const m = new Float32Array(C * C),
    v = new Float32Array(C * C);
  bf.adamw(qkv.subarray(0, C * C), grad, m, v, C * C, 0.1, 0.9, 0.999, 1e-8, 0, 1); // steps q only, through a view
  const after = fwd(bf);
  const want = fwd(fresh());
  assert.ok(maxRel(after, want) < 1e-5, `the forward after the step uses the updated q: ${maxRel(after, want)}`);
  assert.ok(maxRel(after, before) > 1e-2, 'and q did change');
  // A change made outside the kernels, announced for a view with dropPacked, also drops the whole buffer's pack.
  const bf2 = bf16Kernels(loadDnnl() as Kernels & DnnlKernels);
  fwd(bf2);
  qkv.subarray(2 * C * C).fill(0.25);
  bf2.dropPacked(qkv.subarray(2 * C * C));
  assert.ok(maxRel(fwd(bf2), fwd(fresh())) < 1e-5, 'dropPacked(view) re-packs the buffer');
});

test('bf16 training: after AdamW steps the bf16 forward uses the current weights (packs never go stale)', () => {
  const cfg = configFromGeometry({
    text: { hidden: 32, layers: 2, heads: 2, ffn: 64, vocabSize: 64, maxPositions: 8 },
    vision: { hidden: 32, layers: 2, heads: 2, ffn: 64, imageSize: 16, patchSize: 8 },
    projectionDim: 16,
  });
  const model = initFromConfig(cfg, 7);
  const kernels = bf16Kernels(loadDnnl() as Kernels & DnnlKernels);
  const rt: Runtime = { kernels, threads: 1, seed: 0, log: silentLogger, precision: 'bf16' };
  const grads = createGrads(model.config);
  const step = new TrainStep(rt, { student: model, grads });
  const opt = new Optimizer(rt, paramList(model, grads), { lr: 0.05, warmup: 0 });
  const B = 4,
    T = 8,
    P = 3 * 16 * 16;
  const ids = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    ids[b * T] = 62;
    for (let t = 1; t < 5; t++) ids[b * T + t] = (b * 7 + t * 3) % 60;
    ids[b * T + 5] = 63;
  }
  const batch = { B, T, ids, attentionMask: null, pixels: rand(B * P, 61) };
  const embed = (r: Runtime) => [
    visionForward(r, model, batch.pixels, B).embeds,
    textForward(r, model, batch.ids, B, T).embeds,
  ];
  const initial = embed(rt);
  for (let s = 0; s < 3; s++) accumulateStep(step, opt, [batch], () => zeroGrads(model.config, grads));
  const now = embed(rt);
  const want = embed({ ...rt, kernels: bf16Kernels(loadDnnl() as Kernels & DnnlKernels) });
  for (let i = 0; i < 2; i++) {
    assert.ok(cosine(now[i]!, want[i]!) > 0.99999, `tower ${i}: cosine ${cosine(now[i]!, want[i]!)}`);
    assert.ok(cosine(now[i]!, initial[i]!) < 0.999, `tower ${i}: training moved the embeddings`);
  }
});
