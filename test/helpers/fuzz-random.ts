// Seeded randomness and byte/JSON mutators for the fuzz suite: every case is a pure function of (seed, case index).
import { rng } from './random.ts';

export type Rand = () => number;

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1) (test/helpers/random.ts). */
export function seeded(seed: number): Rand {
  return rng(seed);
}

export function int(r: Rand, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

export function pick<T>(r: Rand, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** Hostile scalar values for a JSON field or a flag. */
export const ODD_VALUES: readonly unknown[] = [
  null,
  -1,
  0,
  1.5,
  'abc',
  '',
  true,
  [],
  {},
  2 ** 31,
  -(2 ** 31),
  1e308,
  99999999999,
  [1, 2],
  { a: 1 },
  '12',
  3,
];

export const ODD_FLAG_VALUES: readonly string[] = [
  '0',
  '-1',
  '1.5',
  'abc',
  '',
  '99999999999',
  '1e3',
  'NaN',
  'Infinity',
  '0x10',
  ' 2',
  '100000',
  '2',
  '1',
  '-0',
  '1e308',
];

/** Flips, inserts, deletes or overwrites a few bytes of `buf` (never in place). */
export function mutateBytes(r: Rand, buf: Uint8Array, region?: [number, number]): Uint8Array {
  const out = Buffer.from(buf);
  const [lo, hi] = region ?? [0, out.length];
  const op = int(r, 0, 4);
  const at = () => Math.min(out.length - 1, int(r, lo, Math.max(lo, hi - 1)));
  switch (op) {
    case 0: {
      // bit flips
      for (let i = int(r, 1, 8); i > 0; i--) out[at()] ^= 1 << int(r, 0, 7);
      return out;
    }
    case 1: // truncate
      return out.subarray(0, int(r, 0, Math.max(0, hi - 1)));
    case 2: {
      // overwrite a run with random bytes
      const p = at();
      for (let i = 0; i < int(r, 1, 32) && p + i < out.length; i++) out[p + i] = int(r, 0, 255);
      return out;
    }
    case 3: {
      // insert junk
      const p = at();
      const junk = Buffer.from(Array.from({ length: int(r, 1, 16) }, () => int(r, 0, 255)));
      return Buffer.concat([out.subarray(0, p), junk, out.subarray(p)]);
    }
    default: {
      // delete a run
      const p = at();
      return Buffer.concat([out.subarray(0, p), out.subarray(Math.min(out.length, p + int(r, 1, 64)))]);
    }
  }
}

/** Sets, deletes or retypes one field at a dotted path of a JSON object (returns a deep copy). */
export function mutateJson(
  r: Rand,
  obj: Record<string, unknown>,
  paths: readonly string[],
): { value: unknown; note: string } {
  const copy = structuredClone(obj) as Record<string, unknown>;
  const path = pick(r, paths);
  const keys = path.split('.');
  let node: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) {
    if (node[k] === null || typeof node[k] !== 'object') node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  if (r() < 0.15) {
    delete node[last];
    return { value: copy, note: `delete ${path}` };
  }
  const v = pick(r, ODD_VALUES);
  node[last] = v;
  return { value: copy, note: `${path} = ${JSON.stringify(v)}` };
}

/** A JSON text nested `depth` levels deep: [[[[...]]]] */
export function deepJson(depth: number, open = '[', close = ']'): string {
  return open.repeat(depth) + close.repeat(depth);
}
