// Shared CLI plumbing: the Runtime built from --threads / MOPE_THREADS, JSON output to a file or stdout.
import { loadNativeKernels } from '../engine/native.ts';
import { resolveThreads, stderrLogger, type Runtime } from '../engine/runtime.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { ConfigError } from '../errors.ts';

export function makeRuntime(opts: { threads?: string | number; seed?: string | number }): Runtime {
  const threads = resolveThreads(opts.threads === undefined ? undefined : parsePositiveInt(String(opts.threads), '--threads'));
  const kernels = loadNativeKernels();
  kernels.setThreads(threads);
  const seed = opts.seed === undefined ? 0 : parseNonNegativeInt(String(opts.seed), '--seed');
  return { kernels, threads, seed, log: stderrLogger };
}

export function parsePositiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} expects a positive integer, found "${v}".`);
  return n;
}

export function parseNonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${flag} expects a non-negative integer, found "${v}".`);
  return n;
}

export function parseFraction(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new ConfigError(`${flag} expects a number in (0, 1], found "${v}".`);
  return n;
}

/** Collects repeated flags (--text a --text b) into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return previous.concat([value]);
}

/** Writes JSON to --out atomically, or to stdout when no file is given. */
export function emitJson(value: unknown, out?: string): void {
  if (out) writeJsonAtomic(out, value);
  else process.stdout.write(JSON.stringify(value) + '\n');
}
