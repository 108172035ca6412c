// The Runtime: explicit context created at each entry point and passed down (threads, kernels, seed, logger,
// compute precision).
import { availableParallelism } from 'node:os';
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

/** Thread count: explicit value, else MOPE_THREADS, else the number of CPUs. */
export function resolveThreads(explicit?: number): number {
  if (explicit !== undefined && Number.isFinite(explicit) && explicit >= 1) return Math.floor(explicit);
  const env = process.env.MOPE_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 1) return n;
  }
  return Math.max(1, availableParallelism());
}
