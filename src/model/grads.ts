// Gradient storage shaped like the weights (ClipWeights) and the name → (parameter, gradient) list, by HF
// state-dict name, that optimisers, checkpoints and tests iterate over. Dims: those of src/model/types.ts.
import { toStateDict } from './state-dict.ts';
import type { ClipConfig, ClipModel, ClipWeights } from './types.ts';
import { zeroClipModel } from './init.ts';
import type { Tower } from './workspace.ts';

/** A zero gradient for every weight of `config` (same shapes and field names as ClipWeights). */
export function createGrads(config: ClipConfig): ClipWeights {
  const g = zeroClipModel(config).weights;
  zeroGrads(config, g);
  return g;
}

/** Sets every gradient to zero (gradients accumulate; call this before each optimiser step's first micro-batch). */
export function zeroGrads(config: ClipConfig, grads: ClipWeights): void {
  for (const t of toStateDict({ config, weights: grads }).values()) t.data.fill(0);
}

export interface ParamRef {
  /** HF state-dict name (q/k/v are separate views of the fused qkv buffers). */
  name: string;
  shape: number[];
  param: Float32Array;
  grad: Float32Array;
  tower: Tower | null;
  /** Whether AdamW applies weight decay: false for biases, LayerNorm, embeddings (token, position, class), logit_scale. */
  decay: boolean;
}

/** The tower a parameter name belongs to (null for logit_scale). */
export function towerOfParam(name: string): Tower | null {
  if (name.startsWith('text_model.') || name === 'text_projection.weight') return 'text';
  if (name.startsWith('vision_model.') || name === 'visual_projection.weight') return 'vision';
  return null;
}

/** Weight-decay rule (CLIP / OpenCLIP practice): only matrices that are not embeddings or norms decay. */
export function decays(name: string): boolean {
  if (name === 'logit_scale' || name.endsWith('.bias')) return false;
  if (/layer_norm|layrnorm|layernorm/.test(name)) return false;
  if (/token_embedding|position_embedding|class_embedding/.test(name)) return false;
  return true;
}

export interface ParamListOptions {
  /** Towers whose parameters are left out (frozen). */
  freeze?: Partial<Record<Tower, boolean>>;
  /** Leave logit_scale out (default: included). */
  freezeLogitScale?: boolean;
}

/** Every trainable (parameter, gradient) pair by HF name, in state-dict order. */
export function paramList(model: ClipModel, grads: ClipWeights, opts: ParamListOptions = {}): ParamRef[] {
  const ps = toStateDict(model);
  const gs = toStateDict({ config: model.config, weights: grads });
  const out: ParamRef[] = [];
  for (const [name, p] of ps) {
    const tower = towerOfParam(name);
    if (tower !== null && opts.freeze?.[tower]) continue;
    if (tower === null && opts.freezeLogitScale) continue;
    const g = gs.get(name);
    if (g === undefined || g.data.length !== p.data.length)
      throw new Error(`paramList: gradient for '${name}' missing or mis-shaped`);
    out.push({ name, shape: p.shape, param: p.data, grad: g.data, tower, decay: decays(name) });
  }
  return out;
}

/** Gradients by HF name (views), e.g. to save or compare them. */
export function gradsByName(config: ClipConfig, grads: ClipWeights): Map<string, Float32Array> {
  return new Map([...toStateDict({ config, weights: grads })].map(([k, t]) => [k, t.data]));
}
