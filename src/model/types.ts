// CLIP model data types: configs with per-layer widths and per-layer weights (HF layout, fused QKV).
// Dims: C hidden width, NH_l heads of layer l, HS head size, F_l FFN width of layer l, E projection dim,
// V vocab size, P patch size, G = (imageSize / P)^2 patches, T tokens.

export type Activation = 'quick_gelu' | 'gelu';

export interface TowerConfig {
  /** C: residual stream width (never pruned). */
  hidden: number;
  /** HS: size of one attention head (hidden / original head count; unchanged by pruning). */
  headDim: number;
  /** NH_l per layer; length = number of layers. */
  heads: number[];
  /** F_l per layer; length = number of layers. */
  ffn: number[];
  /** For each kept layer, its index in the original (unpruned) model; identity for dense models. */
  layerMap: number[];
  act: Activation;
  eps: number;
}

export interface TextConfig extends TowerConfig {
  vocabSize: number;
  maxPositions: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  /** True when config.eos_token_id == 2 (legacy): pool at argmax(input_ids) instead of first EOS. */
  legacyArgmaxPooling: boolean;
}

export interface VisionConfig extends TowerConfig {
  imageSize: number;
  patchSize: number;
  channels: number;
}

export interface ClipConfig {
  text: TextConfig;
  vision: VisionConfig;
  /** E */
  projectionDim: number;
  /** The config.json object as read, kept so that saving round-trips fields we do not model. */
  raw: Record<string, unknown>;
}

/** One pre-LN transformer block. Linear weights are HF layout [out, in], row-major. */
export interface LayerWeights {
  ln1W: Float32Array; // [C]
  ln1B: Float32Array; // [C]
  /** Fused q, k, v projections: rows [0,NH·HS) = q, [NH·HS, 2·NH·HS) = k, then v. [3·NH·HS, C] */
  qkvW: Float32Array;
  qkvB: Float32Array; // [3·NH·HS]
  outW: Float32Array; // [C, NH·HS]
  outB: Float32Array; // [C]
  ln2W: Float32Array; // [C]
  ln2B: Float32Array; // [C]
  fc1W: Float32Array; // [F, C]
  fc1B: Float32Array; // [F]
  fc2W: Float32Array; // [C, F]
  fc2B: Float32Array; // [C]
}

export interface TextWeights {
  tokenEmbedding: Float32Array; // [V, C]
  positionEmbedding: Float32Array; // [maxPositions, C]
  layers: LayerWeights[];
  finalLnW: Float32Array; // [C]
  finalLnB: Float32Array; // [C]
  projection: Float32Array; // [E, C]  (HF text_projection.weight)
}

export interface VisionWeights {
  classEmbedding: Float32Array; // [C]
  patchEmbedding: Float32Array; // [C, channels·P·P]  (conv weight [C, ch, P, P] flattened)
  positionEmbedding: Float32Array; // [G+1, C]
  preLnW: Float32Array; // [C]
  preLnB: Float32Array; // [C]
  layers: LayerWeights[];
  postLnW: Float32Array; // [C]
  postLnB: Float32Array; // [C]
  projection: Float32Array; // [E, C]  (HF visual_projection.weight)
}

export interface ClipWeights {
  text: TextWeights;
  vision: VisionWeights;
  /** s, with exp(s) the similarity temperature. A 1-element array so it can be trained in place. */
  logitScale: Float32Array;
}

export interface ClipModel {
  config: ClipConfig;
  weights: ClipWeights;
}

/**
 * Masks for one tower's forward pass. 1 keeps, 0 removes the module's contribution; fractional values
 * scale it. Absent arrays mean "all ones".
 */
export interface TowerMasks {
  /** [L][NH_l] scales each head's output before out_proj. */
  heads?: Float32Array[];
  /** [L][F_l] scales each FFN neuron after the activation. */
  ffn?: Float32Array[];
  /** [L]: 0 skips the whole layer (its residual block contributes nothing). */
  layers?: Float32Array;
}
