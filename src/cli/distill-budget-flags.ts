// The distillation budget flags that compress and study share (--steps, --width-steps, --final-steps, --batch, --lr,
// --weight-decay, --warmup, --grad-clip and the loss weights), parsed in one place.
import { ConfigError } from '../errors.ts';
import type { DistillSettings } from '../pipeline/compress.ts';
import { parseBatch, parseNonNegativeInt } from './common.ts';
import { parseLossFlags } from './loss-flags.ts';

/** A finite number ≥ min, or a ConfigError naming the flag. */
export function parseMin(v: unknown, flag: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new ConfigError(`${flag} expects a number ≥ ${min}, found "${String(v)}".`);
  return n;
}

const optSteps = (v: unknown, flag: string) => (v === undefined ? undefined : parseNonNegativeInt(String(v), flag));

export function parseDistillBudget(o: Record<string, unknown>): DistillSettings {
  return {
    steps: parseNonNegativeInt(String(o.steps), '--steps'),
    widthSteps: optSteps(o.widthSteps, '--width-steps'),
    finalSteps: optSteps(o.finalSteps, '--final-steps'),
    batch: parseBatch(String(o.batch)),
    lr: parseMin(o.lr, '--lr'),
    weightDecay: parseMin(o.weightDecay, '--weight-decay'),
    warmup: parseNonNegativeInt(String(o.warmup), '--warmup'),
    gradClip: parseMin(o.gradClip, '--grad-clip'),
    loss: parseLossFlags(o),
  };
}
