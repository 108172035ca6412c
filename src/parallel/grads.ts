// The gradient all-reduce of a data-parallel step: the trainable gradients, copied into a few large flat buffers
// (at most CHUNK floats each, so one collective moves many tensors), summed over ranks in place, copied back.
// After it every rank holds the same gradient, so every rank takes the same optimiser step.
import type { ParamRef } from '../model/grads.ts';
import type { World } from './world.ts';

/** Floats per flat buffer (128 MiB). */
export const CHUNK = 1 << 25;

export class GradSync {
  private readonly buffers: Float32Array[] = [];
  private readonly plan: { grad: Float32Array; buf: number; at: number }[] = [];

  constructor(
    private readonly world: World,
    params: readonly ParamRef[],
    chunk = CHUNK,
  ) {
    let size = 0;
    const sizes: number[] = [];
    for (const p of params) {
      if (size > 0 && size + p.grad.length > chunk) {
        sizes.push(size);
        size = 0;
      }
      this.plan.push({ grad: p.grad, buf: sizes.length, at: size });
      size += p.grad.length;
    }
    if (size > 0) sizes.push(size);
    for (const s of sizes) this.buffers.push(new Float32Array(s));
  }

  /** Floats exchanged per call (the trainable parameter count). */
  get floats(): number {
    return this.buffers.reduce((a, b) => a + b.length, 0);
  }

  /** Every rank's gradient ← the sum over ranks. */
  sum(): void {
    if (this.world.size === 1) return;
    for (const p of this.plan) this.buffers[p.buf]!.set(p.grad, p.at);
    for (const b of this.buffers) this.world.allreduceSum(b);
    for (const p of this.plan) p.grad.set(this.buffers[p.buf]!.subarray(p.at, p.at + p.grad.length));
  }
}
