// The model under Hugging Face CLIPModel's state-dict names: the one place that knows how our fused layout
// (qkv packed per layer) maps to HF's tensor names and shapes. Checkpoint writing, gradient naming and `info` use it.
import { numVisionPositions } from './config.ts';
import type { ClipModel, LayerWeights, TowerConfig } from './types.ts';

export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

function layerState(t: TowerConfig, l: number, w: LayerWeights, prefix: string, out: Map<string, StateTensor>): void {
  const C = t.hidden;
  const A = t.heads[l]! * t.headDim;
  const F = t.ffn[l]!;
  const p = `${prefix}.encoder.layers.${l}.`;
  const qkv = ['q', 'k', 'v'] as const;
  qkv.forEach((x, i) => {
    out.set(`${p}self_attn.${x}_proj.weight`, { shape: [A, C], data: w.qkvW.subarray(i * A * C, (i + 1) * A * C) });
    out.set(`${p}self_attn.${x}_proj.bias`, { shape: [A], data: w.qkvB.subarray(i * A, (i + 1) * A) });
  });
  out.set(`${p}self_attn.out_proj.weight`, { shape: [C, A], data: w.outW });
  out.set(`${p}self_attn.out_proj.bias`, { shape: [C], data: w.outB });
  out.set(`${p}layer_norm1.weight`, { shape: [C], data: w.ln1W });
  out.set(`${p}layer_norm1.bias`, { shape: [C], data: w.ln1B });
  out.set(`${p}mlp.fc1.weight`, { shape: [F, C], data: w.fc1W });
  out.set(`${p}mlp.fc1.bias`, { shape: [F], data: w.fc1B });
  out.set(`${p}mlp.fc2.weight`, { shape: [C, F], data: w.fc2W });
  out.set(`${p}mlp.fc2.bias`, { shape: [C], data: w.fc2B });
  out.set(`${p}layer_norm2.weight`, { shape: [C], data: w.ln2W });
  out.set(`${p}layer_norm2.bias`, { shape: [C], data: w.ln2B });
}

/**
 * The model as an HF CLIPModel state dict (q/k/v split, `logit_scale` 0-rank). The arrays are views of the
 * model's own buffers, not copies: mutate them and the model changes.
 */
export function toStateDict(model: ClipModel): Map<string, StateTensor> {
  const { config: c, weights: w } = model;
  const tc = c.text;
  const vc = c.vision;
  const E = c.projectionDim;
  const out = new Map<string, StateTensor>();
  out.set('text_model.embeddings.token_embedding.weight', {
    shape: [tc.vocabSize, tc.hidden],
    data: w.text.tokenEmbedding,
  });
  out.set('text_model.embeddings.position_embedding.weight', {
    shape: [tc.maxPositions, tc.hidden],
    data: w.text.positionEmbedding,
  });
  w.text.layers.forEach((L, l) => layerState(tc, l, L, 'text_model', out));
  out.set('text_model.final_layer_norm.weight', { shape: [tc.hidden], data: w.text.finalLnW });
  out.set('text_model.final_layer_norm.bias', { shape: [tc.hidden], data: w.text.finalLnB });
  const P = vc.patchSize;
  out.set('vision_model.embeddings.class_embedding', { shape: [vc.hidden], data: w.vision.classEmbedding });
  out.set('vision_model.embeddings.patch_embedding.weight', {
    shape: [vc.hidden, vc.channels, P, P],
    data: w.vision.patchEmbedding,
  });
  out.set('vision_model.embeddings.position_embedding.weight', {
    shape: [numVisionPositions(vc), vc.hidden],
    data: w.vision.positionEmbedding,
  });
  out.set('vision_model.pre_layrnorm.weight', { shape: [vc.hidden], data: w.vision.preLnW });
  out.set('vision_model.pre_layrnorm.bias', { shape: [vc.hidden], data: w.vision.preLnB });
  w.vision.layers.forEach((L, l) => layerState(vc, l, L, 'vision_model', out));
  out.set('vision_model.post_layernorm.weight', { shape: [vc.hidden], data: w.vision.postLnW });
  out.set('vision_model.post_layernorm.bias', { shape: [vc.hidden], data: w.vision.postLnB });
  out.set('visual_projection.weight', { shape: [E, vc.hidden], data: w.vision.projection });
  out.set('text_projection.weight', { shape: [E, tc.hidden], data: w.text.projection });
  out.set('logit_scale', { shape: [], data: w.logitScale });
  return out;
}
