// Reusable scratch buffers for one tower's layer loop. Dims: N = B·T rows, C width, NH·HS attention width,
// F FFN width; buffers are sized for the widest layer and grow only when a larger (B,T) arrives.
import type { TowerConfig } from './types.ts';

/**
 * Scratch memory for runLayers. One Workspace per tower per concurrent forward; the forward functions keep
 * one per (model, tower) in a WeakMap unless the caller passes its own. Views of the exact sizes a kernel
 * needs are cached per length, so the hot loop does not allocate.
 */
export class Workspace {
  /** LN output [N, C]. */
  ln: Float32Array = new Float32Array(0);
  /** Fused q|k|v [N, 3·NH·HS]. */
  qkv: Float32Array = new Float32Array(0);
  /** Attention core output [N, NH·HS]. */
  att: Float32Array = new Float32Array(0);
  /** Branch output before the residual add [N, C]. */
  branch: Float32Array = new Float32Array(0);
  /** FFN hidden [N, F]. */
  fc: Float32Array = new Float32Array(0);
  /** Padding mask as f32 [B, T] (1 = keep). */
  keyMask: Float32Array = new Float32Array(0);
  private views = new Map<Float32Array, Map<number, Float32Array>>();

  /** Makes sure every buffer fits N rows of this tower's widest layer. */
  ensure(cfg: TowerConfig, N: number): void {
    const C = cfg.hidden;
    const maxD = Math.max(0, ...cfg.heads) * cfg.headDim;
    const maxF = Math.max(0, ...cfg.ffn);
    this.ln = grow(this.ln, N * C);
    this.branch = grow(this.branch, N * C);
    this.qkv = grow(this.qkv, N * 3 * maxD);
    this.att = grow(this.att, N * maxD);
    this.fc = grow(this.fc, N * maxF);
    this.keyMask = grow(this.keyMask, N);
  }

  /** The first n elements of buf, as a cached view. */
  view(buf: Float32Array, n: number): Float32Array {
    if (n === buf.length) return buf;
    let m = this.views.get(buf);
    if (m === undefined) {
      // Buffers are replaced when they grow; drop the views of the old ones.
      for (const k of this.views.keys()) if (!this.isLive(k)) this.views.delete(k);
      m = new Map();
      this.views.set(buf, m);
    }
    let v = m.get(n);
    if (v === undefined) {
      v = buf.subarray(0, n);
      m.set(n, v);
    }
    return v;
  }

  private isLive(b: Float32Array): boolean {
    return (
      b === this.ln || b === this.qkv || b === this.att || b === this.branch || b === this.fc || b === this.keyMask
    );
  }
}

function grow(buf: Float32Array, n: number): Float32Array {
  return buf.length >= n ? buf : new Float32Array(n);
}

export type Tower = 'text' | 'vision';

const cache = new WeakMap<object, { text?: Workspace; vision?: Workspace }>();

/** The shared workspace of (model, tower). Not re-entrant: one forward per (model, tower) at a time. */
export function sharedWorkspace(model: object, tower: Tower): Workspace {
  let e = cache.get(model);
  if (e === undefined) {
    e = {};
    cache.set(model, e);
  }
  return (e[tower] ??= new Workspace());
}
