// Small deterministic PRNG: xoshiro128** seeded through splitmix32, with uniform, normal (Box-Muller / polar) and shuffle.
// Dims: none. Same seed -> same stream on every platform (pure 32-bit integer arithmetic).

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /** `seed` is any number (taken mod 2^32) or a string (hashed), so call sites can derive named streams. */
  constructor(seed: number | string) {
    let s: number;
    if (typeof seed === 'string') {
      s = 0x811c9dc5;
      for (let i = 0; i < seed.length; i++) s = Math.imul(s ^ seed.charCodeAt(i), 0x01000193);
    } else {
      s = Math.floor(seed) % 4294967296;
    }
    const st = { s: s | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next raw 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Integer uniform in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1], so log never sees 0
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Fill with N(mean, std²). A hot loop (model init draws hundreds of millions): the generator is inlined and
   * pairs come from Marsaglia's polar method (no trig). The stream differs from repeated normal() calls.
   */
  fillNormal(a: Float32Array, mean = 0, std = 1): Float32Array {
    let { a: s0, b: s1, c: s2, d: s3 } = this;
    const n = a.length;
    let i = 0;
    while (i < n) {
      let u: number;
      let v: number;
      let q: number;
      do {
        let r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
        let t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotl(s3, 11);
        u = r / 2147483648 - 1;
        r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
        t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotl(s3, 11);
        v = r / 2147483648 - 1;
        q = u * u + v * v;
      } while (q >= 1 || q === 0);
      const f = Math.sqrt((-2 * Math.log(q)) / q);
      a[i++] = mean + std * u * f;
      if (i < n) a[i++] = mean + std * v * f;
    }
    this.a = s0;
    this.b = s1;
    this.c = s2;
    this.d = s3;
    return a;
  }

  fillUniform(a: Float32Array, lo = 0, hi = 1): Float32Array {
    for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * this.uniform();
    return a;
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
