// Deterministic random arrays for tests: mulberry32 uniform numbers (a fresh stream per call), and a 32-bit LCG
// stream for inputs whose values tests were written against.
/** Deterministic uniform numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let seedCounter = 1;
/** Restart the seed sequence (to draw the same inputs twice). */
export function reseed(n: number): void {
  seedCounter = n;
}

/** n numbers uniform in [offset − scale, offset + scale); each call draws from a new seed. */
export function rand(n: number, scale = 1, offset = 0): Float32Array {
  const r = rng(seedCounter++ * 7919);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = offset + (2 * r() - 1) * scale;
  return a;
}

/** n numbers lo + (hi − lo)·u, u from the LCG s ← 1664525·s + 1013904223 (mod 2³²) from seed (0 → 1). */
export function lcgUniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed >>> 0 || 1;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * (hi - lo) + lo;
  }
  return x;
}
