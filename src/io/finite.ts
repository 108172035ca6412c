// Non-finite checks: weights are refused at load and outputs before they are written, so a NaN or Infinity never
// turns into a silent `null` in JSON or a poisoned checkpoint downstream.
import { MopeError } from '../errors.ts';

/** A computed output (embedding, score, metric) that is NaN or infinite. */
export class NonFiniteOutputError extends MopeError {}

/** Index of the first NaN or ±Infinity in `x`, or -1. */
export function firstNonFinite(x: ArrayLike<number>): number {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v - v !== 0) return i; // NaN - NaN and Inf - Inf are NaN
  }
  return -1;
}

/** JSON path (e.g. `text_embeds[0][3]`) of the first non-finite number in a JSON-like value, or null. */
export function findNonFiniteJson(value: unknown, path = ''): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : path || '(the value)';
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const i = firstNonFinite(value as unknown as ArrayLike<number>);
    return i < 0 ? null : `${path}[${i}]`;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = findNonFiniteJson(value[i], `${path}[${i}]`);
      if (p) return p;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = findNonFiniteJson(v, path ? `${path}.${k}` : k);
      if (p) return p;
    }
  }
  return null;
}

/** Throws NonFiniteOutputError naming the first non-finite field of `value`, an output about to be written. */
export function assertFiniteOutput(value: unknown, what: string): void {
  const p = findNonFiniteJson(value);
  if (p !== null) {
    throw new NonFiniteOutputError(
      `${what}: '${p}' is not a finite number; nothing was written. The model's weights or inputs overflow ` +
        '(check the checkpoint with `mope-clip info`).',
    );
  }
}
