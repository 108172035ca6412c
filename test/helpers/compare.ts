// Comparisons of float arrays for tests: cosine (whole array or per row), max |difference|, and an elementwise
// closeness assertion. Every figure is NaN-aware: a NaN anywhere makes cosine NaN and maxAbsDiff Infinity, so a
// check written as `x >= bound` or `x <= tol` fails on it.
import assert from 'node:assert/strict';

/** Cosine of two equal-length vectors (in double); NaN when either holds a NaN or is all zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'cosine: lengths differ');
  let d = 0, na = 0, nb = 0;
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

/** max |a − b|; Infinity when any element of either is NaN or infinite. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'maxAbsDiff: lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!Number.isFinite(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}
