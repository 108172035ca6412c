// Shared CLI plumbing: the Runtime built from --threads / MOPE_THREADS, JSON output to a file or stdout.
import { loadDnnl, loadKernels } from '../engine/native.ts';
import { cpuFeatures, parsePrecision, resolvePrecision } from '../engine/precision.ts';
import { resolveThreads, stderrLogger, type Runtime } from '../engine/runtime.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { assertFiniteOutput } from '../io/finite.ts';
import { LIMITS } from '../io/limits.ts';
import { ConfigError } from '../errors.ts';
import type { CliIO } from './io.ts';

/** Help text of --precision, shared by every command that computes. */
export const PRECISION_HELP =
  'GEMM precision: fp32 (exact), bf16 (oneDNN, fp32 accumulation) or auto (bf16 where the CPU has AMX-BF16 or AVX512-BF16) (default: MOPE_PRECISION or fp32)';

export function makeRuntime(opts: { threads?: string | number; seed?: string | number; precision?: string }): Runtime {
  const threads = resolveThreads(opts.threads === undefined ? undefined : String(opts.threads), '--threads');
  const precision = resolvePrecision(parsePrecision(opts.precision), cpuFeatures(), stderrLogger);
  if (precision === 'bf16' && loadDnnl().dnnlInfo(true).impl === null) {
    throw new ConfigError(
      `--precision bf16: oneDNN has no bf16 matmul on this CPU (ISA ${loadDnnl().dnnlInfo(true).isa}); use --precision fp32.`,
    );
  }
  const kernels = loadKernels(precision);
  kernels.setThreads(threads);
  const seed = opts.seed === undefined ? 0 : parseNonNegativeInt(String(opts.seed), '--seed');
  return { kernels, threads, seed, log: stderrLogger, precision };
}

/** Number(v), except that an empty or blank string is NaN (Number('') is 0). */
function toNumber(v: string): number {
  return String(v).trim() === '' ? NaN : Number(v);
}

/** An integer in [1, max] (max defaults to LIMITS.maxIntFlag); a ConfigError naming the flag otherwise. */
export function parsePositiveInt(v: string, flag: string, max: number = LIMITS.maxIntFlag): number {
  const n = toNumber(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} expects a positive integer, found "${v}".`);
  if (n > max) throw new ConfigError(`${flag} expects an integer in [1, ${max}], found "${v}".`);
  return n;
}

/** An integer in [0, max] (max defaults to LIMITS.maxIntFlag); a ConfigError naming the flag otherwise. */
export function parseNonNegativeInt(v: string, flag: string, max: number = LIMITS.maxIntFlag): number {
  const n = toNumber(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${flag} expects a non-negative integer, found "${v}".`);
  if (n > max) throw new ConfigError(`${flag} expects an integer in [0, ${max}], found "${v}".`);
  return n;
}

export function parseFraction(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1)
    throw new ConfigError(`${flag} expects a number in (0, 1], found "${v}".`);
  return n;
}

/** --batch: an integer in [1, LIMITS.maxBatch]; checked against the model's memory later (checkBatchMemory). */
export function parseBatch(v: string | number, flag = '--batch'): number {
  return parsePositiveInt(String(v), flag, LIMITS.maxBatch);
}

/** The file or folder a data SPEC reads (csv:PATH, coco:PATH:SPLIT, ...), or undefined for builtin sets. */
export function specPath(spec: unknown): string | undefined {
  if (typeof spec !== 'string') return undefined;
  const m = /^(csv|tsv|jsonl|folder|coco):(.+)$/.exec(spec);
  if (!m) return undefined;
  return m[1] === 'coco' ? m[2]!.replace(/:(train|val|test|restval)(\+(train|val|test|restval))*$/, '') : m[2];
}

/** Collects repeated flags (--text a --text b) into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return previous.concat([value]);
}

/** Writes JSON to --out atomically, or to the command's output stream when no file is given. */
export function emitJson(io: CliIO, value: unknown, out?: string): void {
  assertFiniteOutput(value, out ?? 'output');
  if (out) writeJsonAtomic(out, value);
  else io.out.write(JSON.stringify(value) + '\n');
}
