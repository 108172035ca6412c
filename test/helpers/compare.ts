// Comparisons of float arrays for tests: cosine (whole array or per row), max |difference| (absolute, or relative
// to 1 + |expected|), and an elementwise closeness assertion. A NaN or infinity anywhere makes each figure NaN, so
// every comparison written with it fails: `x <= tol` as well as `x > change` and `x >= bound`.
import assert from 'node:assert/strict';

/** Cosine of two equal-length vectors (in double); NaN when either holds a NaN or is all zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'cosine: lengths differ');
  let d = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

/** Cosines of the rows of two [N,E] row-major arrays. */
export function rowCosines(a: Float32Array, b: Float32Array, E: number): number[] {
  assert.equal(a.length, b.length, 'rowCosines: lengths differ');
  const out: number[] = [];
  for (let r = 0; r * E < a.length; r++) {
    out.push(cosine(a.subarray(r * E, (r + 1) * E), b.subarray(r * E, (r + 1) * E)));
  }
  return out;
}

/** max |a − b|; NaN when any element of either is NaN or infinite. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'maxAbsDiff: lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!Number.isFinite(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** max |a − b| / (1 + |b|): relative where b is large, absolute where it is small; NaN as maxAbsDiff. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'maxRelDiff: lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!));
    if (!Number.isFinite(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/**
 * |actual − expected| <= rtol·(|expected| + rms(expected)) + atol elementwise: relative where values are large,
 * scaled to the array's magnitude where cancellation makes single values small (atol for results that are small
 * only through cancellation of larger terms). Every actual value must be finite.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  label: string,
  rtol = 1e-5,
  atol = 0,
): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let ss = 0;
  for (let i = 0; i < expected.length; i++) ss += expected[i]! * expected[i]!;
  const rms = Math.sqrt(ss / Math.max(1, expected.length));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Number.isFinite(a), `${label}: element ${i} is ${a}, expected ${e}`);
    const tol = rtol * (Math.abs(e) + rms) + atol + 1e-30;
    if (!(Math.abs(a - e) <= tol)) {
      assert.fail(`${label}: element ${i} is ${a}, expected ${e} (diff ${Math.abs(a - e)}, tol ${tol})`);
    }
  }
}
