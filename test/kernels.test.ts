// Native kernels (native/, via src/engine/native.ts) against the naive TS reference on awkward shapes.
// Dims: M N K (GEMM), N rows, C width, IC/OC, F, B T NH HS (attention), ch H W P (images).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeKernels } from '../src/engine/native.ts';
import { referenceKernels as ref, erf, erfc } from '../src/engine/reference.ts';
import type { Kernels } from '../src/engine/kernels.ts';

import { rand, reseed } from './helpers/random.ts';
import { assertClose } from './helpers/compare.ts';

const nat: Kernels = loadNativeKernels();

const copy = (x: Float32Array) => new Float32Array(x);

test('reference erf/erfc match known values', () => {
  assert.ok(Math.abs(erf(1) - 0.8427007929497149) < 1e-15);
  assert.ok(Math.abs(erf(-0.5) + 0.5204998778130465) < 1e-15);
  assert.ok(Math.abs(erfc(3) / 2.209049699858544e-5 - 1) < 1e-12);
  assert.ok(Math.abs(erfc(2.5) / 4.06952017444959e-4 - 1) < 1e-12);
  assert.ok(Math.abs(erfc(-1) - 1.842700792949715) < 1e-15);
});

test('reference kernels agree with hand-computed values', () => {
  const c = new Float32Array(4);
  ref.gemm(c, Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6, 7, 8), 2, 2, 2, false, false, 1, 0);
  assert.deepEqual([...c], [19, 22, 43, 50]);
  const ln = new Float32Array(3);
  const mean = new Float32Array(1);
  const rstd = new Float32Array(1);
  ref.layernorm(ln, mean, rstd, Float32Array.of(1, 2, 3), Float32Array.of(1, 1, 2), Float32Array.of(0, 0, 1), 1, 3, 0);
  assert.equal(mean[0], 2);
  assert.ok(Math.abs(rstd[0] - Math.sqrt(1.5)) < 1e-6);
  assert.ok(Math.abs(ln[2] - (2 * Math.sqrt(1.5) + 1)) < 1e-6);
  // q = 0 → uniform attention over the allowed keys → the mean of their v rows
  const qkv = Float32Array.of(0, 9, 2, 0, 8, 4, 0, 7, 6);
  const out = new Float32Array(3);
  const probs = new Float32Array(9);
  ref.attention(out, probs, qkv, null, null, 1, 3, 1, 1, true);
  assert.deepEqual(
    [...out].map((x) => Math.round(x * 1e5) / 1e5),
    [2, 3, 4],
  );
  assert.deepEqual(
    [...probs].map((x) => Math.round(x * 1e5) / 1e5),
    [1, 0, 0, 0.5, 0.5, 0, 0.33333, 0.33333, 0.33333],
  );
  const p = new Float32Array(2 * 2 * 2);
  ref.im2patch(p, Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), 1, 2, 2, 2, 1);
  assert.deepEqual([...p], [1, 5, 2, 6, 3, 7, 4, 8]);
});

test('gemm: all four transposes, alpha/beta, awkward shapes', () => {
  const shapes = [
    [1, 1, 1],
    [3, 7, 17],
    [17, 1, 33],
    [1, 130, 7],
    [33, 65, 130],
    [65, 3, 1],
    [130, 33, 65],
  ];
  for (const [M, N, K] of shapes) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        for (const [alpha, beta] of [
          [1, 0],
          [-0.5, 1],
          [2, 0.3],
        ]) {
          const a = rand(M * K);
          const b = rand(K * N);
          const c0 = rand(M * N);
          const cn = copy(c0);
          const cr = copy(c0);
          nat.gemm(cn, a, b, M, N, K, tA, tB, alpha, beta);
          ref.gemm(cr, a, b, M, N, K, tA, tB, alpha, beta);
          assertClose(cn, cr, `gemm M=${M} N=${N} K=${K} tA=${tA} tB=${tB} alpha=${alpha} beta=${beta}`);
        }
      }
    }
  }
  // beta = 0 never reads C (BLAS semantics): NaN in C does not leak into the result
  const cn = new Float32Array(3 * 5).fill(NaN);
  const a = rand(3 * 4);
  const b = rand(4 * 5);
  nat.gemm(cn, a, b, 3, 5, 4, false, false, 1, 0);
  const cr = new Float32Array(15);
  ref.gemm(cr, a, b, 3, 5, 4, false, false, 1, 0);
  assertClose(cn, cr, 'gemm beta=0 over NaN');
  // K = 0: C = beta·C
  const ck = Float32Array.of(1, 2, 3);
  nat.gemm(ck, new Float32Array(0), new Float32Array(0), 1, 3, 0, false, false, 1, 0.5);
  assert.deepEqual([...ck], [0.5, 1, 1.5]);
});

test('gemmStridedBatched: padded strides, small (OpenMP) and large (OpenBLAS) paths, all transposes', () => {
  const cases = [
    // batch, M, N, K, extra padding per matrix
    [1, 3, 5, 7, 0],
    [3, 1, 1, 1, 2],
    [12, 17, 7, 33, 5],
    [5, 50, 50, 64, 3],
    [24, 7, 65, 3, 1],
    [2, 200, 197, 193, 4], // above the small-GEMM threshold
  ];
  for (const [batch, M, N, K, pad] of cases) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        for (const [alpha, beta] of [
          [1, 0],
          [0.7, -1.5],
        ]) {
          const sA = M * K + pad;
          const sB = K * N + 2 * pad;
          const sC = M * N + 3 * pad;
          const a = rand(batch * sA);
          const b = rand(batch * sB);
          const c0 = rand(batch * sC);
          const cn = copy(c0);
          const cr = copy(c0);
          nat.gemmStridedBatched(cn, a, b, batch, M, N, K, tA, tB, alpha, beta, sA, sB, sC);
          ref.gemmStridedBatched(cr, a, b, batch, M, N, K, tA, tB, alpha, beta, sA, sB, sC);
          assertClose(cn, cr, `gemmStridedBatched batch=${batch} M=${M} N=${N} K=${K} tA=${tA} tB=${tB} beta=${beta}`);
        }
      }
    }
  }
  // a shared operand (stride 0) is allowed
  const a = rand(4 * 6);
  const b = rand(3 * 6 * 5);
  const cn = new Float32Array(3 * 4 * 5);
  const cr = new Float32Array(3 * 4 * 5);
  nat.gemmStridedBatched(cn, a, b, 3, 4, 5, 6, false, false, 1, 0, 0, 30, 20);
  ref.gemmStridedBatched(cr, a, b, 3, 4, 5, 6, false, false, 1, 0, 0, 30, 20);
  assertClose(cn, cr, 'gemmStridedBatched strideA=0');
});

test('linear: with and without bias', () => {
  for (const [N, IC, OC] of [
    [1, 1, 1],
    [3, 7, 65],
    [17, 130, 3],
    [65, 33, 130],
    [50, 64, 1],
  ]) {
    for (const withBias of [true, false]) {
      const inp = rand(N * IC);
      const w = rand(OC * IC, 0.2);
      const bias = withBias ? rand(OC, 3) : null;
      const on = new Float32Array(N * OC).fill(NaN);
      const or = new Float32Array(N * OC);
      nat.linear(on, inp, w, bias, N, IC, OC);
      ref.linear(or, inp, w, bias, N, IC, OC);
      assertClose(on, or, `linear N=${N} IC=${IC} OC=${OC} bias=${withBias}`);
    }
  }
});

test('layernorm: stats, large offsets, null stats', () => {
  for (const [N, C, offset] of [
    [1, 1, 0],
    [3, 7, 0],
    [17, 130, 1000],
    [65, 768, -3],
    [2, 33, 1e4],
  ]) {
    const inp = rand(N * C, 2, offset);
    const w = rand(C, 1, 1);
    const b = rand(C);
    const on = new Float32Array(N * C);
    const or = new Float32Array(N * C);
    const mn = new Float32Array(N);
    const mr = new Float32Array(N);
    const rn = new Float32Array(N);
    const rr = new Float32Array(N);
    nat.layernorm(on, mn, rn, inp, w, b, N, C, 1e-5);
    ref.layernorm(or, mr, rr, inp, w, b, N, C, 1e-5);
    // a float32 input at offset 1e4 carries ~1e-3 absolute rounding, so compare with the same inputs
    assertClose(on, or, `layernorm out N=${N} C=${C} offset=${offset}`);
    assertClose(mn, mr, `layernorm mean N=${N} C=${C}`);
    assertClose(rn, rr, `layernorm rstd N=${N} C=${C}`);
    const on2 = new Float32Array(N * C);
    nat.layernorm(on2, null, null, inp, w, b, N, C, 1e-5);
    assert.deepEqual(on2, on, 'layernorm without stats gives the same output');
  }
  // in place
  const x = rand(5 * 9);
  const w = rand(9);
  const b = rand(9);
  const expect = new Float32Array(45);
  ref.layernorm(expect, null, null, x, w, b, 5, 9, 1e-5);
  nat.layernorm(x, null, null, x, w, b, 5, 9, 1e-5);
  assertClose(x, expect, 'layernorm in place');
});

test('activation: quick_gelu and gelu, masks, extreme inputs, aliasing', () => {
  for (const [N, F] of [
    [1, 1],
    [3, 17],
    [7, 130],
    [33, 65],
    [16, 3072],
  ]) {
    for (const kind of [0, 1] as const) {
      const inp = rand(N * F, 8);
      inp[0] = -100;
      if (inp.length > 1) inp[1] = 100;
      if (inp.length > 2) inp[2] = 0;
      for (const maskKind of ['none', 'mixed']) {
        let mask: Float32Array | null = null;
        if (maskKind === 'mixed') {
          mask = new Float32Array(F);
          for (let f = 0; f < F; f++) mask[f] = f % 3 === 0 ? 0 : f % 3 === 1 ? 1 : 0.25;
        }
        const on = new Float32Array(N * F);
        const or = new Float32Array(N * F);
        nat.activation(on, inp, mask, N, F, kind);
        ref.activation(or, inp, mask, N, F, kind);
        assertClose(on, or, `activation kind=${kind} N=${N} F=${F} mask=${maskKind}`);
        const alias = copy(inp);
        nat.activation(alias, alias, mask, N, F, kind);
        assert.deepEqual(alias, on, `activation in place kind=${kind} N=${N} F=${F}`);
      }
    }
  }
  // elementwise relative accuracy where values are tiny (the negative tail)
  const xs = Float32Array.of(-12, -9, -6, -4, -2, -0.5, -1e-3, 1e-3, 0.5, 3, 7, -5.3, -1.7, 1.7, 2.2, 0.01);
  for (const kind of [0, 1] as const) {
    const on = new Float32Array(xs.length);
    const or = new Float32Array(xs.length);
    nat.activation(on, xs, null, 1, xs.length, kind);
    ref.activation(or, xs, null, 1, xs.length, kind);
    for (let i = 0; i < xs.length; i++) {
      if (or[i] === 0) continue; // below float range
      assert.ok(Math.abs(on[i] / or[i] - 1) < 1e-5, `activation kind=${kind} x=${xs[i]}: ${on[i]} vs ${or[i]}`);
    }
  }
});

test('activation: relative error below 1e-5 on a dense sweep of [-13, 13]', () => {
  const n = 100001;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = -13 + (26 * i) / (n - 1);
  for (const kind of [0, 1] as const) {
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    nat.activation(a, x, null, 1, n, kind);
    ref.activation(b, x, null, 1, n, kind);
    for (let i = 0; i < n; i++) {
      if (Math.abs(b[i]) < 1e-35) continue; // float underflow
      assert.ok(Math.abs(a[i] / b[i] - 1) < 1e-5, `activation kind=${kind} x=${x[i]}: ${a[i]} vs ${b[i]}`);
    }
  }
});

function attentionCase(
  B: number,
  T: number,
  NH: number,
  HS: number,
  causal: boolean,
  opts: { keyMask?: Float32Array; headMask?: Float32Array; scale?: number },
) {
  const C = NH * HS;
  const qkv = rand(B * T * 3 * C, opts.scale ?? 1.5);
  const km = opts.keyMask ?? null;
  const hm = opts.headMask ?? null;
  const label = `attention B=${B} T=${T} NH=${NH} HS=${HS} causal=${causal} keyMask=${!!km} headMask=${!!hm}`;
  const on = new Float32Array(B * T * C).fill(NaN);
  const or = new Float32Array(B * T * C);
  const pn = new Float32Array(B * NH * T * T).fill(NaN);
  const pr = new Float32Array(B * NH * T * T);
  nat.attention(on, pn, qkv, km, hm, B, T, NH, HS, causal);
  ref.attention(or, pr, qkv, km, hm, B, T, NH, HS, causal);
  assertClose(on, or, label + ' out');
  assertClose(pn, pr, label + ' probs');
  const on2 = new Float32Array(B * T * C);
  nat.attention(on2, null, qkv, km, hm, B, T, NH, HS, causal);
  assert.deepEqual(on2, on, label + ': probs = null gives the same out');
  return { on, pn };
}

test('attention: shapes, causal, padding, head masks, fully masked rows', () => {
  attentionCase(1, 1, 1, 1, false, {});
  attentionCase(1, 1, 1, 1, true, {});
  attentionCase(2, 7, 3, 5, false, {});
  attentionCase(2, 7, 3, 5, true, {});
  attentionCase(3, 17, 2, 33, true, {});
  attentionCase(1, 50, 12, 64, false, { scale: 3 });
  // text-like: causal + padding together; batch 1 entirely padded; batch 2 padding at the front
  const B = 3;
  const T = 13;
  const km = new Float32Array(B * T).fill(1);
  for (let t = 9; t < T; t++) km[t] = 0; // b=0: last 4 tokens are padding
  for (let t = 0; t < T; t++) km[T + t] = 0; // b=1: everything padded
  km[2 * T] = 0; // b=2: key 0 padded, so causal row 0 has no key at all
  km[2 * T + 1] = 0;
  const hm = Float32Array.of(1, 0, 0.5, 0.125);
  for (const causal of [false, true]) {
    const { on, pn } = attentionCase(B, T, 4, 3, causal, { keyMask: km, headMask: hm });
    const C = 12;
    // fully padded batch → zeros everywhere, not NaN
    for (let i = T * C; i < 2 * T * C; i++) assert.equal(on[i], 0, 'fully padded batch gives zero output');
    for (let i = 4 * T * T; i < 8 * T * T; i++) assert.equal(pn[i], 0, 'fully padded batch gives zero probs');
    // padded keys get zero probability; every row sums to 1 or is all zeros
    for (let b = 0; b < B; b++)
      for (let h = 0; h < 4; h++)
        for (let i = 0; i < T; i++) {
          let s = 0;
          for (let j = 0; j < T; j++) {
            const p = pn[((b * 4 + h) * T + i) * T + j];
            if (km[b * T + j] === 0 || (causal && j > i)) assert.equal(p, 0, `masked key b=${b} h=${h} i=${i} j=${j}`);
            s += p;
          }
          const rowEmpty = b === 1 || (causal && b === 2 && i < 2);
          assert.ok(rowEmpty ? s === 0 : Math.abs(s - 1) < 1e-5, `probs row sum b=${b} h=${h} i=${i}: ${s}`);
        }
    // head 1 is masked out completely
    for (let t = 0; t < B * T; t++)
      for (let e = 3; e < 6; e++) assert.equal(on[t * C + e], 0, 'headMask 0 zeros its columns');
  }
  // CLIP text shape
  // heads too large for the transposed-key tile (HS·T > 16384 floats) take the dot-product path;
  // HS = 80 uses one 64-wide and one 16-wide block in P·V
  attentionCase(1, 300, 2, 64, true, { headMask: Float32Array.of(0.5, 1) });
  attentionCase(2, 40, 2, 80, false, {});
  const km77 = new Float32Array(2 * 77).fill(1);
  for (let t = 20; t < 77; t++) km77[77 + t] = 0;
  attentionCase(2, 77, 8, 64, true, { keyMask: km77, headMask: Float32Array.of(1, 1, 0, 1, 0.3, 1, 1, 1) });
});

test('residualAdd: sizes, scale, aliasing', () => {
  for (const N of [1, 17, 130, 100003]) {
    const a = rand(N);
    const b = rand(N);
    for (const scale of [1, -0.5, 0]) {
      const on = new Float32Array(N);
      const or = new Float32Array(N);
      nat.residualAdd(on, a, b, scale, N);
      ref.residualAdd(or, a, b, scale, N);
      assertClose(on, or, `residualAdd N=${N} scale=${scale}`);
      const alias = copy(a);
      nat.residualAdd(alias, alias, b, scale, N);
      assert.deepEqual(alias, on, `residualAdd out==a N=${N}`);
      const aliasB = copy(b);
      nat.residualAdd(aliasB, a, aliasB, scale, N);
      assert.deepEqual(aliasB, on, `residualAdd out==b N=${N}`);
    }
  }
});

test('l2normalize: norms, zero rows, in place', () => {
  for (const [N, C] of [
    [1, 1],
    [3, 7],
    [17, 512],
    [65, 33],
  ]) {
    const inp = rand(N * C, 5);
    for (let i = 0; i < C; i++) inp[i] = 0; // first row is zero → norm floored, output zero
    const on = new Float32Array(N * C);
    const or = new Float32Array(N * C);
    const nn = new Float32Array(N);
    const nr = new Float32Array(N);
    nat.l2normalize(on, nn, inp, N, C);
    ref.l2normalize(or, nr, inp, N, C);
    assertClose(on, or, `l2normalize N=${N} C=${C}`);
    assertClose(nn, nr, `l2normalize norms N=${N} C=${C}`);
    assert.ok(Math.abs(nn[0] - 1e-12) < 1e-18, 'zero row norm is floored at 1e-12');
    const alias = copy(inp);
    nat.l2normalize(alias, null, alias, N, C);
    assert.deepEqual(alias, on, `l2normalize in place N=${N} C=${C}`);
  }
});

test('im2patch: grids, channels, patch sizes', () => {
  for (const [B, ch, H, W, P] of [
    [1, 1, 1, 1, 1],
    [2, 3, 6, 9, 3],
    [1, 3, 64, 32, 32],
    [3, 2, 10, 5, 5],
    [1, 1, 4, 4, 1],
  ]) {
    const px = rand(B * ch * H * W);
    const on = new Float32Array(B * ch * H * W).fill(NaN);
    const or = new Float32Array(B * ch * H * W);
    nat.im2patch(on, px, B, ch, H, W, P);
    ref.im2patch(or, px, B, ch, H, W, P);
    assert.deepEqual(on, or, `im2patch B=${B} ch=${ch} H=${H} W=${W} P=${P}`);
  }
});

test('threads 1 and 2: OpenMP kernels bitwise identical, OpenBLAS GEMM equal to rounding', () => {
  const before = nat.getThreads();
  const run = (n: number) => {
    nat.setThreads(n);
    assert.equal(nat.getThreads(), n);
    reseed(1000); // same inputs for both thread counts
    const inp = rand(100 * 768);
    const h = rand(100 * 3072, 4);
    // OpenBLAS partitions work by thread count, which may change the last bit of a sum
    const blas: Float32Array[] = [];
    const lin = new Float32Array(100 * 3072);
    nat.linear(lin, inp, rand(3072 * 768, 0.05), rand(3072), 100, 768, 3072);
    blas.push(lin);
    const g = new Float32Array(130 * 65);
    nat.gemm(g, rand(130 * 200), rand(65 * 200), 130, 65, 200, false, true, 1, 0);
    blas.push(g);
    // every row (or head) is computed by one thread in a fixed order: results must not move at all
    const own: Float32Array[] = [];
    const sb = new Float32Array(24 * 50 * 50);
    nat.gemmStridedBatched(
      sb,
      rand(24 * 50 * 64),
      rand(24 * 50 * 64),
      24,
      50,
      50,
      64,
      false,
      true,
      0.125,
      0,
      3200,
      3200,
      2500,
    );
    own.push(sb);
    const ln = new Float32Array(100 * 768);
    nat.layernorm(ln, null, null, inp, rand(768), rand(768), 100, 768, 1e-5);
    own.push(ln);
    const act = copy(h);
    nat.activation(act, act, null, 100, 3072, 0);
    own.push(act);
    const act1 = new Float32Array(h.length);
    nat.activation(act1, h, rand(3072), 100, 3072, 1);
    own.push(act1);
    const B = 4;
    const T = 50;
    const att = new Float32Array(B * T * 768);
    const probs = new Float32Array(B * 12 * T * T);
    nat.attention(att, probs, rand(B * T * 3 * 768), null, null, B, T, 12, 64, true);
    own.push(att, probs);
    const ra = new Float32Array(h.length);
    nat.residualAdd(ra, h, act, 0.5, h.length);
    own.push(ra);
    const l2 = new Float32Array(ln.length);
    nat.l2normalize(l2, null, ln, 100, 768);
    own.push(l2);
    const patches = new Float32Array(2 * 3 * 64 * 64);
    nat.im2patch(patches, rand(2 * 3 * 64 * 64), 2, 3, 64, 64, 16);
    own.push(patches);
    return { blas, own };
  };
  try {
    const one = run(1);
    const two = run(2);
    for (let i = 0; i < one.own.length; i++) {
      const k = one.own[i].findIndex((v, j) => !Object.is(v, two.own[i][j]));
      assert.equal(k, -1, `own kernel result ${i} differs between 1 and 2 threads at element ${k}`);
    }
    for (let i = 0; i < one.blas.length; i++)
      assertClose(two.blas[i], one.blas[i], `GEMM result ${i}, 2 vs 1 threads`, 1e-6);
  } finally {
    nat.setThreads(before);
  }
});

test('bad arguments raise TypeError / RangeError naming the kernel and argument', () => {
  const f = (n: number) => new Float32Array(n);
  const throwsWith = (fn: () => void, type: typeof TypeError | typeof RangeError, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof type && re.test((e as Error).message), `${type.name} ${re}`);

  throwsWith(
    () => nat.linear(f(12), f(10), f(100), null, 1, 10, 12),
    RangeError,
    /^linear: weight has 100 elements, expected OC\*IC = 120$/,
  );
  throwsWith(() => nat.linear(f(12), f(9), f(120), null, 1, 10, 12), RangeError, /^linear: inp has 9 elements/);
  throwsWith(
    () => nat.linear(f(12), f(10), f(120), f(11), 1, 10, 12),
    RangeError,
    /^linear: bias has 11 elements, expected OC = 12/,
  );
  throwsWith(
    () => nat.linear(f(12), new Float64Array(10) as unknown as Float32Array, f(120), null, 1, 10, 12),
    TypeError,
    /^linear: inp must be a Float32Array/,
  );
  throwsWith(
    () => nat.linear(f(12), f(10), f(120), [] as unknown as Float32Array, 1, 10, 12),
    TypeError,
    /^linear: bias must be a Float32Array or null/,
  );
  throwsWith(
    () => (nat.linear as unknown as (...a: unknown[]) => void)(f(12), f(10)),
    TypeError,
    /^linear: expected 7 arguments, got 2/,
  );
  const big = f(200);
  throwsWith(
    () => nat.linear(big.subarray(0, 12), f(10), big.subarray(10, 130), null, 1, 10, 12),
    RangeError,
    /^linear: out overlaps weight/,
  );

  throwsWith(
    () => nat.gemm(f(6), f(6), f(5), 2, 3, 3, false, false, 1, 0),
    RangeError,
    /^gemm: b has 5 elements, expected K\*N = 9/,
  );
  throwsWith(
    () => nat.gemm(f(6), f(6), f(9), 2, 3, 2.5, false, false, 1, 0),
    RangeError,
    /^gemm: K must be a non-negative integer/,
  );
  throwsWith(
    () => nat.gemm(f(6), f(6), f(9), 2, -3, 3, false, false, 1, 0),
    RangeError,
    /^gemm: N must be a non-negative integer/,
  );
  throwsWith(
    () => nat.gemm(f(6), f(6), f(9), 2, 3, 3, 0 as unknown as boolean, false, 1, 0),
    TypeError,
    /^gemm: transA must be a boolean/,
  );
  throwsWith(
    () => nat.gemm(f(6), f(6), f(9), 2, 3, 3, false, false, '1' as unknown as number, 0),
    TypeError,
    /^gemm: alpha must be a number/,
  );
  throwsWith(() => nat.gemm(f(6), f(6), f(9), 2, 3, 3, false, false, 1, NaN), RangeError, /^gemm: beta must be finite/);
  const shared = f(20);
  throwsWith(
    () => nat.gemm(shared.subarray(0, 6), shared.subarray(3, 9), f(9), 2, 3, 3, false, false, 1, 0),
    RangeError,
    /^gemm: c overlaps a/,
  );

  throwsWith(
    () => nat.gemmStridedBatched(f(12), f(12), f(18), 2, 2, 3, 3, false, false, 1, 0, 6, 9, 5),
    RangeError,
    /^gemmStridedBatched: strideC is 5, expected at least M\*N = 6/,
  );
  throwsWith(
    () => nat.gemmStridedBatched(f(12), f(11), f(18), 2, 2, 3, 3, false, false, 1, 0, 6, 9, 6),
    RangeError,
    /^gemmStridedBatched: a has 11 elements, expected \(batch-1\)\*strideA \+ M\*K = 12/,
  );

  throwsWith(
    () => nat.layernorm(f(6), f(1), null, f(6), f(3), f(3), 2, 3, 1e-5),
    RangeError,
    /^layernorm: mean has 1 elements, expected N = 2/,
  );
  throwsWith(
    () => nat.layernorm(f(6), null, null, f(6), f(3), f(3), 2, 3, -1),
    RangeError,
    /^layernorm: eps must be >= 0/,
  );

  throwsWith(
    () => nat.activation(f(6), f(6), null, 2, 3, 2 as 0),
    RangeError,
    /^activation: kind must be 0 \(quick_gelu\) or 1 \(gelu\)/,
  );
  throwsWith(
    () => nat.activation(f(6), f(6), f(2), 2, 3, 0),
    RangeError,
    /^activation: mask has 2 elements, expected F = 3/,
  );
  const sh = f(10);
  throwsWith(
    () => nat.activation(sh.subarray(1, 7), sh.subarray(0, 6), null, 2, 3, 0),
    RangeError,
    /^activation: out overlaps inp/,
  );

  throwsWith(
    () => nat.attention(f(2 * 3 * 4), null, f(2 * 3 * 12 - 1), null, null, 2, 3, 2, 2, false),
    RangeError,
    /^attention: qkv has 71 elements, expected B\*T\*3\*NH\*HS = 72/,
  );
  throwsWith(
    () => nat.attention(f(24), f(35), f(72), null, null, 2, 3, 2, 2, false),
    RangeError,
    /^attention: probs has 35 elements, expected B\*NH\*T\*T = 36/,
  );
  throwsWith(
    () => nat.attention(f(24), null, f(72), f(5), null, 2, 3, 2, 2, false),
    RangeError,
    /^attention: keyMask has 5 elements, expected B\*T = 6/,
  );
  throwsWith(
    () => nat.attention(f(24), null, f(72), null, f(1), 2, 3, 2, 2, false),
    RangeError,
    /^attention: headMask has 1 elements, expected NH = 2/,
  );
  throwsWith(
    () => nat.attention(f(24), null, f(72), null, null, 2, 3, 2, 2, 1 as unknown as boolean),
    TypeError,
    /^attention: causal must be a boolean/,
  );
  throwsWith(
    () => nat.attention(f(1), null, f(3), null, null, 1, 5000, 1, 1, false),
    RangeError,
    /^attention: T is 5000, at most 4096/,
  );

  throwsWith(
    () => nat.residualAdd(f(3), f(4), f(2), 1, 3),
    RangeError,
    /^residualAdd: b has 2 elements, expected N = 3/,
  );
  throwsWith(
    () => nat.l2normalize(f(6), f(1), f(6), 2, 3),
    RangeError,
    /^l2normalize: norms has 1 elements, expected N = 2/,
  );
  throwsWith(
    () => nat.im2patch(f(36), f(36), 1, 1, 6, 6, 4),
    RangeError,
    /^im2patch: H = 6 and W = 6 must be multiples of P = 4/,
  );
  throwsWith(() => nat.im2patch(f(36), f(36), 1, 1, 6, 6, 0), RangeError, /^im2patch: P must be at least 1/);
  throwsWith(() => nat.setThreads(0), RangeError, /^setThreads: n must be between 1 and 1024/);
});
