// Backward and optimiser kernels: native against the naive TS reference on awkward shapes, the reference's
// gradients against central finite differences of the reference forward run in float64, native gradients
// against directional finite differences of the native forward in float32, AdamW against a hand-computed
// trajectory, and argument validation. Dims: N rows, C width, IC/OC, F, B T NH HS (attention), ch H W P.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeKernels } from '../src/engine/native.ts';
import { referenceKernels as ref, erfc } from '../src/engine/reference.ts';
import type { ActKind, Kernels } from '../src/engine/kernels.ts';

import { rand, reseed, rng } from './helpers/random.ts';
import { assertClose } from './helpers/compare.ts';

const nat: Kernels = loadNativeKernels();

const copy = (x: Float32Array) => new Float32Array(x);
const f64 = (x: ArrayLike<number>) => Float64Array.from(x);
/** The reference kernels only index their arrays, so they run in double when handed Float64Arrays. */
const D = (x: Float64Array) => x as unknown as Float32Array;
const nan = (n: number) => new Float32Array(n).fill(NaN);

/** Σ w·y in double. */
function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * y[i];
  return s;
}

/**
 * Central differences in float64: for every element of x, (L(x + h) − L(x − h))/2h against the analytic
 * gradient g. Truncation (~h²) and rounding (~1e-16·|L|/h) errors are near 1e-10, so tol = 1e-6 is tight:
 * a dropped term or a factor off by 1e-3 fails it (checked by mutating the reference: 1.702 → 1.7 in
 * quick_gelu′, x·φ scaled by 0.999, the layernorm or l2normalize projection scaled by 0.99 / 0.9, the softmax
 * row-sum term, the key scale or the head mask dropped from attention).
 */
function fdCheck(label: string, x: Float64Array, g: ArrayLike<number>, loss: () => number, tol = 1e-6): void {
  assert.equal(g.length, x.length, `${label}: gradient length`);
  let ss = 0;
  for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const rms = Math.sqrt(ss / Math.max(1, g.length));
  assert.ok(rms > 1e-6, `${label}: gradient is (nearly) zero everywhere, the check would be vacuous`);
  for (let k = 0; k < x.length; k++) {
    const v = x[k];
    const h = 1e-5 * Math.max(1, Math.abs(v));
    x[k] = v + h;
    const lp = loss();
    x[k] = v - h;
    const lm = loss();
    x[k] = v;
    const fd = (lp - lm) / (2 * h);
    const tolk = tol * (Math.abs(g[k]) + rms);
    if (!(Math.abs(fd - g[k]) <= tolk))
      assert.fail(`${label}: d/dx[${k}] analytic ${g[k]}, finite difference ${fd} (tol ${tolk})`);
  }
}

/**
 * Directional central difference in float32 for the native kernels: x ± h·u (u random ±1) rounded to float,
 * compared with Σ g·(x₊ − x₋)/2 over the perturbation actually applied. The error is judged against Σ|g·Δx|,
 * so a near-zero directional derivative is not a trap; tol 1e-2 covers float32 forward rounding.
 */
function dirCheck(
  label: string,
  x: Float32Array,
  g: ArrayLike<number>,
  loss: () => number,
  hRel = 1e-2,
  tol = 1e-2,
): void {
  const x0 = copy(x);
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x0[i] * x0[i];
  const h = hRel * Math.max(1e-3, Math.sqrt(ss / Math.max(1, x.length)));
  const r = rng(4242 + x.length);
  const u = Array.from({ length: x.length }, () => (r() < 0.5 ? -1 : 1));
  for (let i = 0; i < x.length; i++) x[i] = x0[i] + h * u[i];
  const xp = copy(x);
  const lp = loss();
  for (let i = 0; i < x.length; i++) x[i] = x0[i] - h * u[i];
  const xm = copy(x);
  const lm = loss();
  x.set(x0);
  let an = 0;
  let mag = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = (xp[i] - xm[i]) / 2;
    an += g[i] * dx;
    mag += Math.abs(g[i] * dx);
  }
  const fd = (lp - lm) / 2;
  assert.ok(mag > 0, `${label}: zero gradient`);
  assert.ok(
    Math.abs(fd - an) <= tol * mag,
    `${label}: directional derivative analytic ${an}, finite difference ${fd} (scale ${mag})`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// (a) native against the reference

test('linearBackward: shapes, null outputs, accumulate vs overwrite', () => {
  for (const [N, IC, OC] of [
    [1, 1, 1],
    [3, 7, 65],
    [17, 130, 3],
    [65, 33, 130],
    [50, 64, 1],
    [0, 5, 4],
  ]) {
    const dout = rand(N * OC);
    const inp = rand(N * IC);
    const w = rand(OC * IC, 0.3);
    const dw0 = rand(OC * IC);
    const db0 = rand(OC);
    const label = `linearBackward N=${N} IC=${IC} OC=${OC}`;
    const [dinN, dwN, dbN] = [nan(N * IC), copy(dw0), copy(db0)];
    const [dinR, dwR, dbR] = [new Float32Array(N * IC), copy(dw0), copy(db0)];
    nat.linearBackward(dinN, dwN, dbN, dout, inp, w, N, IC, OC);
    ref.linearBackward(dinR, dwR, dbR, dout, inp, w, N, IC, OC);
    assertClose(dinN, dinR, label + ' dinp');
    assertClose(dwN, dwR, label + ' dweight');
    assertClose(dbN, dbR, label + ' dbias');
    // each output is optional and independent of the others
    const dwOnly = copy(dw0);
    nat.linearBackward(null, dwOnly, null, dout, inp, w, N, IC, OC);
    assert.deepEqual(dwOnly, dwN, label + ': dweight alone');
    const dinOnly = nan(N * IC);
    nat.linearBackward(dinOnly, null, null, dout, inp, w, N, IC, OC);
    assert.deepEqual(dinOnly, dinN, label + ': dinp alone');
    const dbOnly = copy(db0);
    nat.linearBackward(null, null, dbOnly, dout, inp, w, N, IC, OC);
    assert.deepEqual(dbOnly, dbN, label + ': dbias alone');
    // twice from zero: parameter gradients double, the input gradient does not
    const [d1, w1, b1] = [new Float32Array(N * IC), new Float32Array(OC * IC), new Float32Array(OC)];
    nat.linearBackward(d1, w1, b1, dout, inp, w, N, IC, OC);
    const [d2, w2, b2] = [copy(d1), copy(w1), copy(b1)];
    nat.linearBackward(d2, w2, b2, dout, inp, w, N, IC, OC);
    assert.deepEqual(d2, d1, label + ': dinp is overwritten');
    assertClose(
      w2,
      w1.map((x) => 2 * x),
      label + ': dweight accumulates',
      1e-6,
    );
    assertClose(
      b2,
      b1.map((x) => 2 * x),
      label + ': dbias accumulates',
      1e-6,
    );
  }
});

test('layernormBackward: shapes, large offsets, accumulate vs overwrite', () => {
  for (const [N, C, offset] of [
    [1, 1, 0],
    [1, 2, 0],
    [3, 7, 0],
    [17, 130, 1000],
    [65, 768, -3],
    [2, 33, 1e4],
    [40, 200, 0.5],
  ]) {
    const inp = rand(N * C, 2, offset);
    const w = rand(C, 1, 1);
    const b = rand(C);
    const dout = rand(N * C);
    const label = `layernormBackward N=${N} C=${C} offset=${offset}`;
    const statsOf = (k: Kernels) => {
      const mean = new Float32Array(N);
      const rstd = new Float32Array(N);
      k.layernorm(new Float32Array(N * C), mean, rstd, inp, w, b, N, C, 1e-5);
      return { mean, rstd };
    };
    const sn = statsOf(nat);
    const sr = statsOf(ref);
    const dw0 = rand(C);
    const db0 = rand(C);
    const [dinN, dwN, dbN] = [nan(N * C), copy(dw0), copy(db0)];
    const [dinR, dwR, dbR] = [new Float32Array(N * C), copy(dw0), copy(db0)];
    nat.layernormBackward(dinN, dwN, dbN, dout, inp, w, sn.mean, sn.rstd, N, C);
    ref.layernormBackward(dinR, dwR, dbR, dout, inp, w, sr.mean, sr.rstd, N, C);
    // dinp = rstd·(dout·w − two row means): judged also against the size of the terms that cancel (at C = 2
    // the true gradient is nearly zero); at offset 1e4 a float32 input carries ~1e-3 absolute rounding
    const rsMax = Math.max(...sn.rstd);
    assertClose(dinN, dinR, label + ' dinp', 2e-5, 1e-6 * rsMax);
    assertClose(dwN, dwR, label + ' dweight');
    assertClose(dbN, dbR, label + ' dbias');
    const [d1, w1, b1] = [new Float32Array(N * C), new Float32Array(C), new Float32Array(C)];
    nat.layernormBackward(d1, w1, b1, dout, inp, w, sn.mean, sn.rstd, N, C);
    const [d2, w2, b2] = [copy(d1), copy(w1), copy(b1)];
    nat.layernormBackward(d2, w2, b2, dout, inp, w, sn.mean, sn.rstd, N, C);
    assert.deepEqual(d2, d1, label + ': dinp is overwritten');
    assertClose(
      w2,
      w1.map((x) => 2 * x),
      label + ': dweight accumulates',
      1e-6,
    );
    assertClose(
      b2,
      b1.map((x) => 2 * x),
      label + ': dbias accumulates',
      1e-6,
    );
  }
});

test('activationBackward: both kinds, masks, extreme inputs, dinp aliasing dout', () => {
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
      const dout = rand(N * F);
      for (const maskKind of ['none', 'mixed']) {
        let mask: Float32Array | null = null;
        if (maskKind === 'mixed') {
          mask = new Float32Array(F);
          for (let f = 0; f < F; f++) mask[f] = f % 3 === 0 ? 0 : f % 3 === 1 ? 1 : 0.25;
        }
        const label = `activationBackward kind=${kind} N=${N} F=${F} mask=${maskKind}`;
        const dn = nan(N * F);
        const dr = new Float32Array(N * F);
        nat.activationBackward(dn, dout, inp, mask, N, F, kind);
        ref.activationBackward(dr, dout, inp, mask, N, F, kind);
        assertClose(dn, dr, label);
        if (mask) for (let f = 0; f < F; f += 3) assert.ok(dn[f] === 0, label + ': mask 0 gives zero gradient');
        const alias = copy(dout);
        nat.activationBackward(alias, alias, inp, mask, N, F, kind);
        assert.deepEqual(alias, dn, label + ': dinp == dout');
      }
    }
  }
  // elementwise accuracy of the derivative over a dense sweep, judged against the size of its two terms
  // (σ and 1.702·x·σ·(1−σ), or Φ and x·φ), which cancel where the derivative crosses zero; float32 rounding of
  // the exponent (1.702·x) alone is ~1e-6 relative at |x| = 13
  const n = 20001;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = -13 + (26 * i) / (n - 1);
  const ones = new Float32Array(n).fill(1);
  for (const kind of [0, 1] as const) {
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    nat.activationBackward(a, ones, x, null, 1, n, kind);
    ref.activationBackward(b, ones, x, null, 1, n, kind);
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      const s = 1 / (1 + Math.exp(-1.702 * xi));
      const terms =
        kind === 0
          ? s + 1.702 * Math.abs(xi) * s * (1 - s)
          : 0.5 * erfc(-xi / Math.SQRT2) + (Math.abs(xi) * Math.exp(-0.5 * xi * xi)) / Math.sqrt(2 * Math.PI);
      assert.ok(Math.abs(a[i] - b[i]) <= 4e-6 * terms, `activationBackward kind=${kind} x=${xi}: ${a[i]} vs ${b[i]}`);
    }
  }
});

function attentionBwdCase(
  B: number,
  T: number,
  NH: number,
  HS: number,
  causal: boolean,
  opts: { keyMask?: Float32Array; headMask?: Float32Array; scale?: number },
) {
  const C = NH * HS;
  const qkv = rand(B * T * 3 * C, opts.scale ?? 1.5);
  const dout = rand(B * T * C);
  const km = opts.keyMask ?? null;
  const hm = opts.headMask ?? null;
  const label = `attentionBackward B=${B} T=${T} NH=${NH} HS=${HS} causal=${causal} keyMask=${!!km} headMask=${!!hm}`;
  const probsOf = (k: Kernels) => {
    const p = new Float32Array(B * NH * T * T);
    k.attention(new Float32Array(B * T * C), p, qkv, km, hm, B, T, NH, HS, causal);
    return p;
  };
  const pn = probsOf(nat);
  const dn = nan(B * T * 3 * C);
  const dr = new Float32Array(B * T * 3 * C);
  nat.attentionBackward(dn, dout, pn, qkv, hm, B, T, NH, HS);
  ref.attentionBackward(dr, dout, probsOf(ref), qkv, hm, B, T, NH, HS);
  assertClose(dn, dr, label, 2e-5);
  const again = copy(dn);
  nat.attentionBackward(again, dout, pn, qkv, hm, B, T, NH, HS);
  assert.deepEqual(again, dn, label + ': dqkv is overwritten, not accumulated');
  return dn;
}

test('attentionBackward: shapes, T=1, causal, padding, head masks, fully masked rows', () => {
  attentionBwdCase(1, 1, 1, 1, false, {});
  attentionBwdCase(1, 1, 1, 1, true, {});
  attentionBwdCase(2, 7, 3, 5, false, {});
  attentionBwdCase(2, 7, 3, 5, true, {});
  attentionBwdCase(3, 17, 2, 33, true, {});
  attentionBwdCase(1, 50, 12, 64, false, { scale: 3 });
  attentionBwdCase(2, 40, 2, 80, false, { headMask: Float32Array.of(0.5, 1) });
  // heads too large for the transposed-value tile (HS·T > 16384 floats) take the dot-product path
  attentionBwdCase(1, 300, 2, 64, true, { headMask: Float32Array.of(0.5, 1) });
  attentionBwdCase(1, 150, 2, 64, true, {}); // past the tiled path's 128 tokens, Vᵀ still on the stack
  const B = 3;
  const T = 13;
  const NH = 4;
  const HS = 3;
  const C = NH * HS;
  const km = new Float32Array(B * T).fill(1);
  for (let t = 9; t < T; t++) km[t] = 0; // b=0: last 4 tokens are padding
  for (let t = 0; t < T; t++) km[T + t] = 0; // b=1: everything padded
  km[2 * T] = 0; // b=2: keys 0 and 1 padded, so causal rows 0 and 1 have no key at all
  km[2 * T + 1] = 0;
  const hm = Float32Array.of(1, 0, 0.5, 0.125);
  for (const causal of [false, true]) {
    const d = attentionBwdCase(B, T, NH, HS, causal, { keyMask: km, headMask: hm });
    const at = (b: number, t: number, part: number, c: number) => d[(b * T + t) * 3 * C + part * C + c];
    for (let t = 0; t < T; t++)
      for (let c = 0; c < C; c++)
        for (let part = 0; part < 3; part++) {
          assert.equal(at(1, t, part, c), 0, 'fully padded batch: zero gradient');
          if (c >= HS && c < 2 * HS) assert.equal(at(0, t, part, c), 0, 'headMask 0: zero gradient');
        }
    // padded keys receive no gradient in k or v
    for (let t = 9; t < T; t++)
      for (let c = 0; c < C; c++) assert.equal(at(0, t, 1, c) + at(0, t, 2, c), 0, 'padded key: zero dk, dv');
    if (causal)
      for (let c = 0; c < C; c++) assert.equal(at(2, 0, 0, c) + at(2, 1, 0, c), 0, 'query with no key: zero dq');
  }
  const km77 = new Float32Array(2 * 77).fill(1);
  for (let t = 20; t < 77; t++) km77[77 + t] = 0;
  attentionBwdCase(2, 77, 8, 64, true, { keyMask: km77, headMask: Float32Array.of(1, 1, 0, 1, 0.3, 1, 1, 1) });
});

test('l2normalizeBackward: shapes, zero rows, dinp aliasing dout', () => {
  for (const [N, C] of [
    [1, 1],
    [3, 7],
    [17, 512],
    [65, 33],
  ]) {
    const inp = rand(N * C, 5);
    for (let i = 0; i < C; i++) inp[i] = 0; // first row is zero → norm floored
    // second row tiny but not zero → norm floored, out = x/1e-12 is not a unit vector, no projection in the gradient
    if (N > 1) for (let i = C; i < 2 * C; i++) inp[i] *= 1e-14;
    const out = new Float32Array(N * C);
    const norms = new Float32Array(N);
    nat.l2normalize(out, norms, inp, N, C);
    const dout = rand(N * C);
    const label = `l2normalizeBackward N=${N} C=${C}`;
    const dn = nan(N * C);
    const dr = new Float32Array(N * C);
    nat.l2normalizeBackward(dn, dout, out, norms, N, C);
    ref.l2normalizeBackward(dr, dout, out, norms, N, C);
    // row by row: the zero row's gradient (dout/1e-12) would otherwise set the scale for all of them
    for (let n = 0; n < N; n++)
      assertClose(dn.subarray(n * C, (n + 1) * C), dr.subarray(n * C, (n + 1) * C), `${label} row ${n}`);
    if (N > 1) assert.ok(norms[1] <= 1e-12, `${label}: row 1 is below the norm floor`);
    // out·dinp = 0 for every row with a real norm: the gradient is tangent to the sphere
    for (let n = 2; n < N; n++) {
      const o = out.subarray(n * C, (n + 1) * C);
      assert.ok(Math.abs(dot(o, dn.subarray(n * C, (n + 1) * C))) < 1e-5 * Math.sqrt(C), `${label}: row ${n} tangent`);
    }
    const alias = copy(dout);
    nat.l2normalizeBackward(alias, alias, out, norms, N, C);
    assert.deepEqual(alias, dn, label + ': dinp == dout');
  }
});

test('im2patchBackward: inverse of im2patch, shapes', () => {
  for (const [B, ch, H, W, P] of [
    [1, 1, 1, 1, 1],
    [2, 3, 6, 9, 3],
    [1, 3, 64, 32, 32],
    [3, 2, 10, 5, 5],
    [1, 1, 4, 4, 1],
    [4, 3, 64, 64, 16],
  ]) {
    const n = B * ch * H * W;
    const dpatches = rand(n);
    const dn = nan(n);
    const dr = new Float32Array(n);
    nat.im2patchBackward(dn, dpatches, B, ch, H, W, P);
    ref.im2patchBackward(dr, dpatches, B, ch, H, W, P);
    const label = `im2patchBackward B=${B} ch=${ch} H=${H} W=${W} P=${P}`;
    assert.deepEqual(dn, dr, label);
    const px = rand(n);
    const patches = new Float32Array(n);
    nat.im2patch(patches, px, B, ch, H, W, P);
    const back = nan(n);
    nat.im2patchBackward(back, patches, B, ch, H, W, P);
    assert.deepEqual(back, px, label + ': undoes im2patch');
  }
});

test('sumSquares and scale: sizes, double accumulation', () => {
  for (const N of [0, 1, 17, 130, 100003, 1_000_003]) {
    const x = rand(N, 3);
    const sn = nat.sumSquares(x, N);
    const sr = ref.sumSquares(x, N);
    assert.ok(Math.abs(sn - sr) <= 1e-12 * Math.max(1, sr), `sumSquares N=${N}: ${sn} vs ${sr}`);
    for (const s of [0.5, -3, 0]) {
      const a = copy(x);
      const b = copy(x);
      nat.scale(a, s, N);
      ref.scale(b, s, N);
      assert.deepEqual(a, b, `scale N=${N} s=${s}`);
    }
  }
  // a prefix view: only the first N elements count
  const x = Float32Array.of(1, 2, 3, 100);
  assert.equal(nat.sumSquares(x, 3), 14);
  nat.scale(x, 2, 3);
  assert.deepEqual([...x], [2, 4, 6, 100]);
  // float accumulation of 1e6 values of 1 + 2^-12 would drift; double does not
  const big = new Float32Array(1 << 20).fill(1 + 2 ** -12);
  assert.equal(nat.sumSquares(big, big.length), (1 + 2 ** -12) ** 2 * big.length);
});

test('diffSquares (hidden-state loss): gradient equal to the twin, sum in double, thread-count independent', () => {
  for (const N of [0, 1, 17, 130, 100003, 1_000_003]) {
    const a = rand(N, 2),
      b = rand(N, 2);
    const gn = new Float32Array(N),
      gr = new Float32Array(N);
    const sn = nat.diffSquares(gn, a, b, 0.37, N);
    const sr = ref.diffSquares(gr, a, b, 0.37, N);
    assert.ok(Math.abs(sn - sr) <= 1e-12 * Math.max(1, sr), `diffSquares N=${N}: ${sn} vs ${sr}`);
    assert.deepEqual(gn, gr, `diffSquares gradient N=${N}`);
  }
  const before = nat.getThreads();
  const a = rand(300_001),
    b = rand(300_001),
    g = new Float32Array(a.length);
  nat.setThreads(1);
  const s1 = nat.diffSquares(g, a, b, 1, a.length);
  nat.setThreads(2);
  const s2 = nat.diffSquares(g, a, b, 1, a.length);
  nat.setThreads(before);
  assert.equal(s1, s2);
  // a prefix view: only the first N elements are read and written
  const g3 = Float32Array.of(9, 9, 9, 9);
  assert.equal(nat.diffSquares(g3, Float32Array.of(1, 2, 3, 4), Float32Array.of(0, 0, 1, 0), 2, 3), 1 + 4 + 4);
  assert.deepEqual([...g3], [2, 4, 4, 9]);
  const f = (n: number) => new Float32Array(n);
  const refuses = (fn: () => void, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof RangeError && re.test(e.message), `${re}`);
  refuses(() => nat.diffSquares(f(3), f(4), f(4), 1, 4), /^diffSquares: g has 3 elements, expected N = 4/);
  const x = f(8);
  refuses(() => nat.diffSquares(x.subarray(0, 4), x.subarray(2, 6), f(4), 1, 4), /^diffSquares: g overlaps a/);
});

test('backward kernels: 1 and 2 threads give bitwise identical results', () => {
  const before = nat.getThreads();
  const run = (threads: number) => {
    nat.setThreads(threads);
    reseed(5000);
    const res: Float32Array[] = [];
    const N = 100;
    const C = 768;
    const inp = rand(N * C, 2, 0.3);
    const dout = rand(N * C);
    const w = rand(C, 1, 1);
    const mean = new Float32Array(N);
    const rstd = new Float32Array(N);
    nat.layernorm(new Float32Array(N * C), mean, rstd, inp, w, rand(C), N, C, 1e-5);
    const [dln, dlw, dlb] = [new Float32Array(N * C), new Float32Array(C), new Float32Array(C)];
    nat.layernormBackward(dln, dlw, dlb, dout, inp, w, mean, rstd, N, C);
    res.push(dln, dlw, dlb);
    const db = new Float32Array(3072);
    nat.linearBackward(null, null, db, rand(N * 3072), inp, rand(3072 * C), N, C, 3072);
    res.push(db);
    const h = rand(N * 3072, 4);
    for (const kind of [0, 1] as const) {
      const da = new Float32Array(N * 3072);
      nat.activationBackward(da, rand(N * 3072), h, rand(3072), N, 3072, kind);
      res.push(da);
    }
    const [B, T, NH, HS] = [4, 50, 12, 64];
    const qkv = rand(B * T * 3 * NH * HS);
    const probs = new Float32Array(B * NH * T * T);
    nat.attention(new Float32Array(B * T * NH * HS), probs, qkv, null, null, B, T, NH, HS, true);
    const dqkv = new Float32Array(qkv.length);
    nat.attentionBackward(dqkv, rand(B * T * NH * HS), probs, qkv, rand(NH), B, T, NH, HS);
    res.push(dqkv);
    const out = new Float32Array(N * C);
    const norms = new Float32Array(N);
    nat.l2normalize(out, norms, inp, N, C);
    const dl2 = new Float32Array(N * C);
    nat.l2normalizeBackward(dl2, dout, out, norms, N, C);
    res.push(dl2);
    const p = rand(300_000);
    const m = rand(300_000, 0.1);
    const v = rand(300_000, 0.01, 0.01);
    nat.adamw(p, rand(300_000), m, v, 300_000, 1e-3, 0.9, 0.999, 1e-8, 0.1, 3);
    res.push(p, m, v, Float32Array.of(nat.sumSquares(p, p.length)));
    return res;
  };
  try {
    const one = run(1);
    const two = run(2);
    for (let i = 0; i < one.length; i++) {
      const k = one[i].findIndex((x, j) => !Object.is(x, two[i][j]));
      assert.equal(k, -1, `result ${i} differs between 1 and 2 threads at element ${k}`);
    }
  } finally {
    nat.setThreads(before);
  }
});

// ---------------------------------------------------------------------------------------------------------
// (b) finite-difference gradient checks: reference in float64, native in float32

test('finite differences: linear w.r.t. input, weight and bias', () => {
  const [N, IC, OC] = [4, 5, 3];
  const inp = f64(rand(N * IC));
  const w = f64(rand(OC * IC));
  const bias = f64(rand(OC));
  const wl = f64(rand(N * OC)); // L = Σ wl·linear(inp)
  const out = new Float64Array(N * OC);
  const loss = () => (ref.linear(D(out), D(inp), D(w), D(bias), N, IC, OC), dot(wl, out));
  const [dinp, dw, db] = [new Float64Array(N * IC), new Float64Array(OC * IC), new Float64Array(OC)];
  ref.linearBackward(D(dinp), D(dw), D(db), D(wl), D(inp), D(w), N, IC, OC);
  fdCheck('linear d/dinp', inp, dinp, loss);
  fdCheck('linear d/dweight', w, dw, loss);
  fdCheck('linear d/dbias', bias, db, loss);
  // native, float32
  const [i32, w32, b32, wl32] = [
    Float32Array.from(inp),
    Float32Array.from(w),
    Float32Array.from(bias),
    Float32Array.from(wl),
  ];
  const o32 = new Float32Array(N * OC);
  const loss32 = () => (nat.linear(o32, i32, w32, b32, N, IC, OC), dot(wl32, o32));
  const [gi, gw, gb] = [new Float32Array(N * IC), new Float32Array(OC * IC), new Float32Array(OC)];
  nat.linearBackward(gi, gw, gb, wl32, i32, w32, N, IC, OC);
  dirCheck('native linear d/dinp', i32, gi, loss32);
  dirCheck('native linear d/dweight', w32, gw, loss32);
  dirCheck('native linear d/dbias', b32, gb, loss32);
});

test('finite differences: layernorm w.r.t. input, weight and bias', () => {
  for (const [N, C, offset] of [
    [3, 6, 0],
    [2, 9, 5],
    [1, 2, 0],
  ]) {
    const label = `layernorm N=${N} C=${C} offset=${offset}`;
    const inp = f64(rand(N * C, 1.5, offset));
    const w = f64(rand(C, 0.5, 1));
    const b = f64(rand(C));
    const wl = f64(rand(N * C));
    const out = new Float64Array(N * C);
    const mean = new Float64Array(N);
    const rstd = new Float64Array(N);
    const loss = () => (ref.layernorm(D(out), null, null, D(inp), D(w), D(b), N, C, 1e-5), dot(wl, out));
    ref.layernorm(D(out), D(mean), D(rstd), D(inp), D(w), D(b), N, C, 1e-5);
    const [dinp, dw, db] = [new Float64Array(N * C), new Float64Array(C), new Float64Array(C)];
    ref.layernormBackward(D(dinp), D(dw), D(db), D(wl), D(inp), D(w), D(mean), D(rstd), N, C);
    fdCheck(label + ' d/dinp', inp, dinp, loss);
    fdCheck(label + ' d/dweight', w, dw, loss);
    fdCheck(label + ' d/dbias', b, db, loss);
    const [i32, w32, b32, wl32] = [
      Float32Array.from(inp),
      Float32Array.from(w),
      Float32Array.from(b),
      Float32Array.from(wl),
    ];
    const o32 = new Float32Array(N * C);
    const [m32, r32] = [new Float32Array(N), new Float32Array(N)];
    nat.layernorm(o32, m32, r32, i32, w32, b32, N, C, 1e-5);
    const [gi, gw, gb] = [new Float32Array(N * C), new Float32Array(C), new Float32Array(C)];
    nat.layernormBackward(gi, gw, gb, wl32, i32, w32, m32, r32, N, C);
    const loss32 = () => (nat.layernorm(o32, null, null, i32, w32, b32, N, C, 1e-5), dot(wl32, o32));
    // at C = 2 the output is ±w + b whatever the input: no float32 directional signal to check
    if (C > 2) dirCheck('native ' + label + ' d/dinp', i32, gi, loss32);
    dirCheck('native ' + label + ' d/dweight', w32, gw, loss32);
    dirCheck('native ' + label + ' d/dbias', b32, gb, loss32);
  }
});

test('finite differences: activation, both kinds, with a mask', () => {
  const [N, F] = [3, 11];
  for (const kind of [0, 1] as ActKind[]) {
    const inp = f64(rand(N * F, 4));
    const mask = f64(Array.from({ length: F }, (_, f) => [1, 0.25, 0, 2][f % 4]));
    const wl = f64(rand(N * F));
    const out = new Float64Array(N * F);
    const loss = () => (ref.activation(D(out), D(inp), D(mask), N, F, kind), dot(wl, out));
    const dinp = new Float64Array(N * F);
    ref.activationBackward(D(dinp), D(wl), D(inp), D(mask), N, F, kind);
    fdCheck(`activation kind=${kind} d/dinp`, inp, dinp, loss);
    const [i32, m32, wl32] = [Float32Array.from(inp), Float32Array.from(mask), Float32Array.from(wl)];
    const o32 = new Float32Array(N * F);
    const g32 = new Float32Array(N * F);
    nat.activationBackward(g32, wl32, i32, m32, N, F, kind);
    dirCheck(
      `native activation kind=${kind} d/dinp`,
      i32,
      g32,
      () => (nat.activation(o32, i32, m32, N, F, kind), dot(wl32, o32)),
    );
  }
});

test('finite differences: attention with causal and key masks and a head mask', () => {
  const cases: {
    B: number;
    T: number;
    NH: number;
    HS: number;
    causal: boolean;
    km: number[] | null;
    hm: number[] | null;
  }[] = [
    { B: 1, T: 1, NH: 1, HS: 2, causal: false, km: null, hm: null },
    { B: 2, T: 4, NH: 2, HS: 3, causal: false, km: null, hm: null },
    { B: 2, T: 5, NH: 3, HS: 2, causal: true, km: null, hm: [1, 0.5, 0] },
    // b=0 has its last key padded; b=1 has key 0 padded, so its causal row 0 attends to nothing
    { B: 2, T: 5, NH: 2, HS: 3, causal: true, km: [1, 1, 1, 1, 0, 0, 1, 1, 0, 1], hm: [0.75, 1.5] },
    { B: 2, T: 4, NH: 2, HS: 2, causal: false, km: [1, 0, 1, 1, 0, 0, 0, 0], hm: [1, 0.3] },
  ];
  for (const { B, T, NH, HS, causal, km, hm } of cases) {
    const label = `attention B=${B} T=${T} NH=${NH} HS=${HS} causal=${causal} keyMask=${!!km} headMask=${hm}`;
    const C = NH * HS;
    const qkv = f64(rand(B * T * 3 * C, 1.2));
    const kmD = km ? f64(km) : null;
    const hmD = hm ? f64(hm) : null;
    const wl = f64(rand(B * T * C));
    const out = new Float64Array(B * T * C);
    const probs = new Float64Array(B * NH * T * T);
    const loss = () => (
      ref.attention(D(out), null, D(qkv), kmD && D(kmD), hmD && D(hmD), B, T, NH, HS, causal),
      dot(wl, out)
    );
    ref.attention(D(out), D(probs), D(qkv), kmD && D(kmD), hmD && D(hmD), B, T, NH, HS, causal);
    const dqkv = new Float64Array(qkv.length);
    ref.attentionBackward(D(dqkv), D(wl), D(probs), D(qkv), hmD && D(hmD), B, T, NH, HS);
    fdCheck(label + ' d/dqkv', qkv, dqkv, loss);
    // native, float32, including q, k and v separately (a directional check mixes them otherwise)
    const q32 = Float32Array.from(qkv);
    const km32 = km ? Float32Array.from(km) : null;
    const hm32 = hm ? Float32Array.from(hm) : null;
    const wl32 = Float32Array.from(wl);
    const o32 = new Float32Array(B * T * C);
    const p32 = new Float32Array(B * NH * T * T);
    nat.attention(o32, p32, q32, km32, hm32, B, T, NH, HS, causal);
    const g32 = new Float32Array(q32.length);
    nat.attentionBackward(g32, wl32, p32, q32, hm32, B, T, NH, HS);
    const loss32 = () => (nat.attention(o32, null, q32, km32, hm32, B, T, NH, HS, causal), dot(wl32, o32));
    dirCheck('native ' + label + ' d/dqkv', q32, g32, loss32);
    for (let part = 0; part < 3; part++) {
      // perturb only one of q, k, v: zero the direction elsewhere by checking on a masked gradient
      const sel = (t: number) => Math.floor((t % (3 * C)) / C) === part;
      const gPart = g32.map((g, t) => (sel(t) ? g : 0));
      const x0 = copy(q32);
      const r = rng(99 + part);
      const u = Array.from(q32, (_, t) => (sel(t) ? (r() < 0.5 ? -1 : 1) * 1e-2 : 0));
      for (let t = 0; t < q32.length; t++) q32[t] = x0[t] + u[t];
      const xp = copy(q32);
      const lp = loss32();
      for (let t = 0; t < q32.length; t++) q32[t] = x0[t] - u[t];
      const xm = copy(q32);
      const lm = loss32();
      q32.set(x0);
      let an = 0;
      let mag = 0;
      for (let t = 0; t < q32.length; t++) {
        an += (gPart[t] * (xp[t] - xm[t])) / 2;
        mag += Math.abs((gPart[t] * (xp[t] - xm[t])) / 2);
      }
      if (mag === 0) continue; // e.g. T = 1: q has no influence
      assert.ok(
        Math.abs((lp - lm) / 2 - an) <= 1e-2 * mag,
        `native ${label} part ${'qkv'[part]}: ${an} vs ${(lp - lm) / 2}`,
      );
    }
  }
});

test('finite differences: l2normalize and im2patch', () => {
  const [N, C] = [4, 7];
  const inp = f64(rand(N * C, 2));
  const wl = f64(rand(N * C));
  const out = new Float64Array(N * C);
  const norms = new Float64Array(N);
  const loss = () => (ref.l2normalize(D(out), null, D(inp), N, C), dot(wl, out));
  ref.l2normalize(D(out), D(norms), D(inp), N, C);
  const dinp = new Float64Array(N * C);
  ref.l2normalizeBackward(D(dinp), D(wl), D(out), D(norms), N, C);
  fdCheck('l2normalize d/dinp', inp, dinp, loss);
  const [i32, wl32] = [Float32Array.from(inp), Float32Array.from(wl)];
  const [o32, n32, g32] = [new Float32Array(N * C), new Float32Array(N), new Float32Array(N * C)];
  nat.l2normalize(o32, n32, i32, N, C);
  nat.l2normalizeBackward(g32, wl32, o32, n32, N, C);
  dirCheck('native l2normalize d/dinp', i32, g32, () => (nat.l2normalize(o32, null, i32, N, C), dot(wl32, o32)));
  // below the norm floor the forward is x/1e-12, a linear map
  const tiny = f64([3e-13, -4e-13]);
  const wt = f64([0.7, -0.2]);
  const ot = new Float64Array(2);
  const nt = new Float64Array(1);
  ref.l2normalize(D(ot), D(nt), D(tiny), 1, 2);
  const gt = new Float64Array(2);
  ref.l2normalizeBackward(D(gt), D(wt), D(ot), D(nt), 1, 2);
  assertClose(gt, [0.7e12, -0.2e12], 'l2normalize gradient below the norm floor', 1e-12);

  const [B, ch, H, W, P] = [2, 2, 4, 6, 2];
  const px = f64(rand(B * ch * H * W));
  const wp = f64(rand(px.length));
  const patches = new Float64Array(px.length);
  const dpx = new Float64Array(px.length);
  ref.im2patchBackward(D(dpx), D(wp), B, ch, H, W, P);
  fdCheck('im2patch d/dpixels', px, dpx, () => (ref.im2patch(D(patches), D(px), B, ch, H, W, P), dot(wp, patches)));
});

// ---------------------------------------------------------------------------------------------------------
// (c) AdamW

test('adamw: two steps against a hand-computed trajectory', () => {
  // p0 = 0.5, g = 0.1 then −0.3, lr 1e-2, β1 0.9, β2 0.999, eps 1e-8, wd 0.1.
  // step 1: p = 0.5·(1 − 1e-3) = 0.4995; m = 0.01; v = 1e-5; m̂ = 0.01/0.1 = 0.1; v̂ = 1e-5/1e-3 = 0.01;
  //         p = 0.4995 − 1e-2·0.1/(0.1 + 1e-8) = 0.489500001
  // step 2: p = 0.489500001·0.999 = 0.489010500999; m = 0.009 − 0.03 = −0.021; v = 0.999e-5 + 1e-3·0.09 = 9.999e-5;
  //         m̂ = −0.021/0.19; v̂ = 9.999e-5/0.001999; p = 0.489010500999 + 1e-2·0.1105263/0.2236515 = 0.4939523991110
  // Second parameter: p0 = −2, g = 0 then 4, lr 1e-3, β1 0.8, β2 0.99, eps 1e-6, wd 0.01 — step 1 is pure decay.
  const expected = [
    {
      p0: 0.5,
      gs: [0.1, -0.3],
      hp: [1e-2, 0.9, 0.999, 1e-8, 0.1],
      traj: [
        [0.4895000009999999, 0.01, 1e-5],
        [0.4939523991110065, -0.021, 9.999e-5],
      ],
    },
    {
      p0: -2,
      gs: [0, 4],
      hp: [1e-3, 0.8, 0.99, 1e-6, 0.01],
      traj: [
        [-1.99998, 0, 0],
        [-2.0007437074780374, 0.8, 0.16],
      ],
    },
  ];
  for (const { p0, gs, hp, traj } of expected) {
    const [lr, b1, b2, eps, wd] = hp;
    for (const [name, k] of [
      ['native', nat],
      ['reference', ref],
    ] as const) {
      const p = Float32Array.of(p0);
      const m = new Float32Array(1);
      const v = new Float32Array(1);
      for (let s = 0; s < 2; s++) {
        k.adamw(p, Float32Array.of(gs[s]), m, v, 1, lr, b1, b2, eps, wd, s + 1);
        const [pe, me, ve] = traj[s];
        const lbl = `adamw ${name} p0=${p0} step ${s + 1}`;
        assert.ok(Math.abs(p[0] - pe) <= 4e-7 * Math.abs(pe), `${lbl}: p ${p[0]} vs ${pe}`);
        assert.ok(Math.abs(m[0] - me) <= 1e-6 * Math.abs(me), `${lbl}: m ${m[0]} vs ${me}`);
        assert.ok(Math.abs(v[0] - ve) <= 1e-6 * Math.abs(ve), `${lbl}: v ${v[0]} vs ${ve}`);
      }
    }
  }
});

test('adamw: native against reference over many steps, decoupled weight decay', () => {
  const N = 1001;
  const pn = rand(N, 2);
  const pr = copy(pn);
  const [mn, vn, mr, vr] = [new Float32Array(N), new Float32Array(N), new Float32Array(N), new Float32Array(N)];
  for (let step = 1; step <= 20; step++) {
    const g = rand(N, step % 2 ? 0.1 : 3);
    g[0] = 0;
    nat.adamw(pn, g, mn, vn, N, 3e-3, 0.9, 0.98, 1e-6, 0.05, step);
    ref.adamw(pr, g, mr, vr, N, 3e-3, 0.9, 0.98, 1e-6, 0.05, step);
  }
  assertClose(pn, pr, 'adamw param after 20 steps', 1e-5);
  assertClose(mn, mr, 'adamw m after 20 steps', 1e-5);
  assertClose(vn, vr, 'adamw v after 20 steps', 1e-5);
  // zero gradient and zero state: only the decoupled decay acts, p·(1 − lr·wd)
  const p = Float32Array.of(1.5, -3);
  nat.adamw(p, new Float32Array(2), new Float32Array(2), new Float32Array(2), 2, 0.1, 0.9, 0.999, 1e-8, 0.5, 7);
  assert.deepEqual([...p], [Math.fround(1.5 * Math.fround(0.95)), Math.fround(-3 * Math.fround(0.95))]);
});

// ---------------------------------------------------------------------------------------------------------
// (d) argument validation

test('backward kernels: bad arguments raise TypeError / RangeError naming the kernel and argument', () => {
  const f = (n: number) => new Float32Array(n);
  const throwsWith = (fn: () => void, type: typeof TypeError | typeof RangeError, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof type && re.test((e as Error).message), `${type.name} ${re}`);

  throwsWith(
    () => nat.linearBackward(f(10), f(100), f(12), f(12), f(10), f(120), 1, 10, 12),
    RangeError,
    /^linearBackward: dweight has 100 elements, expected OC\*IC = 120$/,
  );
  throwsWith(
    () => nat.linearBackward(null, null, f(11), f(12), f(10), f(120), 1, 10, 12),
    RangeError,
    /^linearBackward: dbias has 11 elements, expected OC = 12/,
  );
  throwsWith(
    () => nat.linearBackward(null, null, null, f(11), f(10), f(120), 1, 10, 12),
    RangeError,
    /^linearBackward: dout has 11 elements, expected N\*OC = 12/,
  );
  throwsWith(
    () => nat.linearBackward([] as unknown as Float32Array, null, null, f(12), f(10), f(120), 1, 10, 12),
    TypeError,
    /^linearBackward: dinp must be a Float32Array or null/,
  );
  const sh = f(40);
  throwsWith(
    () => nat.linearBackward(sh.subarray(0, 10), null, null, sh.subarray(5, 17), f(10), f(120), 1, 10, 12),
    RangeError,
    /^linearBackward: dinp overlaps dout/,
  );
  throwsWith(
    () => (nat.linearBackward as unknown as (...a: unknown[]) => void)(f(1)),
    TypeError,
    /^linearBackward: expected 9 arguments, got 1/,
  );

  throwsWith(
    () => nat.layernormBackward(f(6), f(3), f(3), f(6), f(6), f(3), f(1), f(2), 2, 3),
    RangeError,
    /^layernormBackward: mean has 1 elements, expected N = 2/,
  );
  throwsWith(
    () => nat.layernormBackward(f(6), f(3), null as unknown as Float32Array, f(6), f(6), f(3), f(2), f(2), 2, 3),
    TypeError,
    /^layernormBackward: dbias must be a Float32Array$/,
  );
  const x = f(6);
  throwsWith(
    () => nat.layernormBackward(x, f(3), f(3), x, f(6), f(3), f(2), f(2), 2, 3),
    RangeError,
    /^layernormBackward: dinp overlaps dout/,
  );

  throwsWith(
    () => nat.activationBackward(f(6), f(6), f(6), null, 2, 3, 2 as 0),
    RangeError,
    /^activationBackward: kind must be 0 \(quick_gelu\) or 1 \(gelu\)/,
  );
  throwsWith(
    () => nat.activationBackward(f(6), f(6), f(6), f(2), 2, 3, 0),
    RangeError,
    /^activationBackward: mask has 2 elements, expected F = 3/,
  );
  throwsWith(
    () => nat.activationBackward(sh.subarray(1, 7), sh.subarray(0, 6), f(6), null, 2, 3, 0),
    RangeError,
    /^activationBackward: dinp overlaps dout/,
  );
  throwsWith(
    () => nat.activationBackward(x, f(6), x, null, 2, 3, 0),
    RangeError,
    /^activationBackward: dinp overlaps inp/,
  );

  throwsWith(
    () => nat.attentionBackward(f(72), f(24), f(35), f(72), null, 2, 3, 2, 2),
    RangeError,
    /^attentionBackward: probs has 35 elements, expected B\*NH\*T\*T = 36/,
  );
  throwsWith(
    () => nat.attentionBackward(f(71), f(24), f(36), f(72), null, 2, 3, 2, 2),
    RangeError,
    /^attentionBackward: dqkv has 71 elements, expected B\*T\*3\*NH\*HS = 72/,
  );
  throwsWith(
    () => nat.attentionBackward(f(72), f(24), f(36), f(72), f(1), 2, 3, 2, 2),
    RangeError,
    /^attentionBackward: headMask has 1 elements, expected NH = 2/,
  );
  throwsWith(
    () => nat.attentionBackward(f(72), f(24), null as unknown as Float32Array, f(72), null, 2, 3, 2, 2),
    TypeError,
    /^attentionBackward: probs must be a Float32Array$/,
  );
  throwsWith(
    () => nat.attentionBackward(f(3), f(1), f(1), f(3), null, 1, 5000, 1, 1),
    RangeError,
    /^attentionBackward: T is 5000, at most 4096/,
  );
  const q = f(72);
  throwsWith(
    () => nat.attentionBackward(q, f(24), f(36), q, null, 2, 3, 2, 2),
    RangeError,
    /^attentionBackward: dqkv overlaps qkv/,
  );

  throwsWith(
    () => nat.l2normalizeBackward(f(6), f(6), f(6), f(1), 2, 3),
    RangeError,
    /^l2normalizeBackward: norms has 1 elements, expected N = 2/,
  );
  throwsWith(
    () => nat.l2normalizeBackward(x, f(6), x, f(2), 2, 3),
    RangeError,
    /^l2normalizeBackward: dinp overlaps out/,
  );
  throwsWith(
    () => nat.im2patchBackward(f(36), f(36), 1, 1, 6, 6, 4),
    RangeError,
    /^im2patchBackward: H = 6 and W = 6 must be multiples of P = 4/,
  );
  throwsWith(
    () => nat.im2patchBackward(f(36), f(35), 1, 1, 6, 6, 3),
    RangeError,
    /^im2patchBackward: dpatches has 35 elements/,
  );

  const a = () => [f(4), f(4), f(4), f(4)] as const;
  throwsWith(
    () => nat.adamw(...a(), 4, 1e-3, 0.9, 0.999, 1e-8, 0.01, 0),
    RangeError,
    /^adamw: step must be at least 1/,
  );
  throwsWith(
    () => nat.adamw(...a(), 4, 1e-3, 1, 0.999, 1e-8, 0.01, 1),
    RangeError,
    /^adamw: beta1 must be in \[0, 1\)/,
  );
  throwsWith(
    () => nat.adamw(...a(), 4, 1e-3, 0.9, -0.1, 1e-8, 0.01, 1),
    RangeError,
    /^adamw: beta2 must be in \[0, 1\)/,
  );
  throwsWith(() => nat.adamw(...a(), 4, -1, 0.9, 0.999, 1e-8, 0.01, 1), RangeError, /^adamw: lr must be >= 0/);
  throwsWith(
    () => nat.adamw(...a(), 4, 1e-3, 0.9, 0.999, 1e-8, -0.01, 1),
    RangeError,
    /^adamw: weightDecay must be >= 0/,
  );
  throwsWith(
    () => nat.adamw(...a(), 4, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1.5),
    RangeError,
    /^adamw: step must be a non-negative integer/,
  );
  throwsWith(
    () => nat.adamw(f(4), f(4), f(3), f(4), 4, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1),
    RangeError,
    /^adamw: m has 3 elements, expected N = 4/,
  );
  throwsWith(() => nat.adamw(f(4), f(4), x, x, 4, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1), RangeError, /^adamw: m overlaps v/);
  throwsWith(
    () => nat.adamw(f(4), f(4), f(4), f(4), 4, NaN, 0.9, 0.999, 1e-8, 0.01, 1),
    RangeError,
    /^adamw: lr must be finite/,
  );

  throwsWith(() => nat.sumSquares(f(3), 4), RangeError, /^sumSquares: x has 3 elements, expected N = 4/);
  throwsWith(
    () => nat.sumSquares(new Float64Array(3) as unknown as Float32Array, 3),
    TypeError,
    /^sumSquares: x must be a Float32Array$/,
  );
  throwsWith(() => nat.scale(f(3), NaN, 3), RangeError, /^scale: s must be finite/);
  throwsWith(() => nat.scale(f(3), 2, -1), RangeError, /^scale: N must be a non-negative integer/);
});
