// The Runtime: explicit context created at each entry point and passed down (threads, kernels, seed, logger,
// compute precision).
import { availableParallelism } from 'node:os';
import { ConfigError } from '../errors.ts';
import type { Kernels } from './kernels.ts';
import type { Precision } from './precision.ts';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface Runtime {
  kernels: Kernels;
  threads: number;
  seed: number;
  log: Logger;
  /** GEMM precision of `kernels` (absent = fp32, the exact path). */
  precision?: Precision;
}

export const stderrLogger: Logger = {
  info: (m) => process.stderr.write(m + '\n'),
  warn: (m) => process.stderr.write('warning: ' + m + '\n'),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {} };

/** Largest accepted --threads / MOPE_THREADS (the native kernels refuse more). */
export const MAX_THREADS = 1024;

/** An integer in [1, MAX_THREADS] from a flag or environment value, else a ConfigError naming `source`. */
export function parseThreads(v: string | number, source: string): number {
  const n = typeof v === 'number' ? v : String(v).trim() === '' ? NaN : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new ConfigError(`${source} expects an integer in [1, ${MAX_THREADS}] (compute threads), found "${v}".`);
  }
  return n;
}

/** Thread count: explicit value, else MOPE_THREADS, else the number of CPUs (at most MAX_THREADS). Bad values are errors. */
export function resolveThreads(explicit?: number | string, flag = '--threads'): number {
  if (explicit !== undefined) return parseThreads(explicit, flag);
  const env = process.env.MOPE_THREADS;
  if (env !== undefined && env !== '') return parseThreads(env, 'MOPE_THREADS');
  return Math.min(MAX_THREADS, Math.max(1, availableParallelism()));
}
