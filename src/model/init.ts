// Random CLIP models from a small geometry description (seeded, deterministic), named standard geometries, zero models.
// Dims: C hidden, L layers, NH_l heads, HS head size, F_l FFN width, V vocab, T max positions, P patch, G patches, E projection.
import { ConfigError } from '../errors.ts';
import { CLIP_EOS_ID, MAX_DIM, MAX_LAYERS, TEXT_DEFAULTS, numVisionPositions, validateClipConfig } from './config.ts';
import { Rng } from './rng.ts';
import type {
  Activation,
  ClipConfig,
  ClipModel,
  LayerWeights,
  TextWeights,
  TowerConfig,
  VisionWeights,
} from './types.ts';

export interface TowerGeometry {
  hidden: number;
  layers: number;
  /** Heads per layer: one number for all layers, or one per layer (pruned shapes). */
  heads: number | number[];
  /** FFN width per layer: one number for all layers, or one per layer. */
  ffn: number | number[];
  /** HS; default hidden / heads (or hidden / max(heads) for a per-layer list). */
  headDim?: number;
  /** Original index of each layer; default identity. */
  layerMap?: number[];
  act?: Activation;
  eps?: number;
}

export interface TextGeometry extends TowerGeometry {
  vocabSize?: number; // default 49408
  maxPositions?: number; // default 77
}

export interface VisionGeometry extends TowerGeometry {
  imageSize: number;
  patchSize: number;
  channels?: number; // default 3
}

export interface ClipGeometry {
  text: TextGeometry;
  vision: VisionGeometry;
  projectionDim: number;
}

export type GeometryName = 'tiny' | 'vit-b-32' | 'vit-b-16' | 'vit-l-14';

/** Real OpenAI CLIP shapes plus a tiny one for tests (real vocab so the real tokenizer works). */
export const GEOMETRIES: Record<GeometryName, ClipGeometry> = {
  tiny: {
    text: { hidden: 32, layers: 2, heads: 4, ffn: 64, vocabSize: 49408, maxPositions: 77 },
    vision: { hidden: 48, layers: 2, heads: 4, ffn: 96, imageSize: 32, patchSize: 8 },
    projectionDim: 24,
  },
  'vit-b-32': {
    text: { hidden: 512, layers: 12, heads: 8, ffn: 2048 },
    vision: { hidden: 768, layers: 12, heads: 12, ffn: 3072, imageSize: 224, patchSize: 32 },
    projectionDim: 512,
  },
  'vit-b-16': {
    text: { hidden: 512, layers: 12, heads: 8, ffn: 2048 },
    vision: { hidden: 768, layers: 12, heads: 12, ffn: 3072, imageSize: 224, patchSize: 16 },
    projectionDim: 512,
  },
  'vit-l-14': {
    text: { hidden: 768, layers: 12, heads: 12, ffn: 3072 },
    vision: { hidden: 1024, layers: 24, heads: 16, ffn: 4096, imageSize: 224, patchSize: 14 },
    projectionDim: 768,
  },
};

function perLayer(v: number | number[], layers: number, what: string): number[] {
  if (typeof v === 'number') return new Array<number>(layers).fill(v);
  if (v.length !== layers) throw new ConfigError(`geometry: ${what} lists ${v.length} values for ${layers} layers`);
  return [...v];
}

/** Every size of a geometry is an integer in range before any array is sized from it. */
function checkSize(v: unknown, where: string, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`geometry: ${where} must be an integer in [${min}, ${max}], found ${JSON.stringify(v)}`);
  }
}

function checkTowerSizes(g: TowerGeometry, name: string): void {
  checkSize(g.hidden, `${name}.hidden`, 1, MAX_DIM);
  checkSize(g.layers, `${name}.layers`, 0, MAX_LAYERS);
  for (const k of ['heads', 'ffn'] as const) {
    const v = g[k];
    if (Array.isArray(v)) {
      if (v.length > MAX_LAYERS)
        throw new ConfigError(`geometry: ${name}.${k} lists ${v.length} values, more than ${MAX_LAYERS}`);
      v.forEach((x, i) => checkSize(x, `${name}.${k}[${i}]`, 0, MAX_DIM));
    } else checkSize(v, `${name}.${k}`, k === 'heads' ? 1 : 0, MAX_DIM);
  }
  if (g.headDim !== undefined) checkSize(g.headDim, `${name}.headDim`, 1, MAX_DIM);
}

function towerFromGeometry(g: TowerGeometry, name: string): TowerConfig {
  checkTowerSizes(g, name);
  const heads = perLayer(g.heads, g.layers, `${name}.heads`);
  const ffn = perLayer(g.ffn, g.layers, `${name}.ffn`);
  const refHeads = typeof g.heads === 'number' ? g.heads : Math.max(1, ...heads);
  const headDim = g.headDim ?? g.hidden / refHeads;
  if (!Number.isInteger(headDim) || headDim < 1 || !Number.isInteger(g.hidden / headDim)) {
    throw new ConfigError(`geometry: ${name}.hidden ${g.hidden} is not divisible into heads of size ${headDim}`);
  }
  if (heads.some((h) => h > g.hidden / headDim)) {
    throw new ConfigError(
      `geometry: ${name}.heads ${JSON.stringify(heads)} exceeds hidden / headDim = ${g.hidden / headDim}`,
    );
  }
  const layerMap = g.layerMap ? [...g.layerMap] : Array.from({ length: g.layers }, (_, i) => i);
  return { hidden: g.hidden, headDim, heads, ffn, layerMap, act: g.act ?? 'quick_gelu', eps: g.eps ?? 1e-5 };
}

/** The ClipConfig a geometry describes (HF defaults for token ids). */
export function configFromGeometry(geometry: ClipGeometry | GeometryName): ClipConfig {
  const g = typeof geometry === 'string' ? GEOMETRIES[geometry] : geometry;
  if (!g)
    throw new ConfigError(`geometry: unknown name '${String(geometry)}'; known: ${Object.keys(GEOMETRIES).join(', ')}`);
  for (const [k, v, min] of [
    ['text.vocabSize', g.text.vocabSize, 1],
    ['text.maxPositions', g.text.maxPositions, 1],
    ['vision.imageSize', g.vision.imageSize, 1],
    ['vision.patchSize', g.vision.patchSize, 1],
    ['vision.channels', g.vision.channels, 1],
    ['projectionDim', g.projectionDim, 1],
  ] as const) {
    if (v !== undefined || k === 'vision.imageSize' || k === 'vision.patchSize' || k === 'projectionDim')
      checkSize(v, k, min, MAX_DIM);
  }
  const config: ClipConfig = {
    text: {
      ...towerFromGeometry(g.text, 'text'),
      vocabSize: g.text.vocabSize ?? TEXT_DEFAULTS.vocab_size,
      maxPositions: g.text.maxPositions ?? TEXT_DEFAULTS.max_position_embeddings,
      bosTokenId: TEXT_DEFAULTS.bos_token_id,
      eosTokenId: CLIP_EOS_ID,
      padTokenId: TEXT_DEFAULTS.pad_token_id,
      legacyArgmaxPooling: false,
    },
    vision: {
      ...towerFromGeometry(g.vision, 'vision'),
      imageSize: g.vision.imageSize,
      patchSize: g.vision.patchSize,
      channels: g.vision.channels ?? 3,
    },
    projectionDim: g.projectionDim,
    raw: {},
  };
  validateClipConfig(config, 'geometry');
  return config;
}

function zeroLayer(t: TowerConfig, l: number): LayerWeights {
  const C = t.hidden;
  const A = t.heads[l]! * t.headDim;
  const F = t.ffn[l]!;
  return {
    ln1W: new Float32Array(C).fill(1),
    ln1B: new Float32Array(C),
    qkvW: new Float32Array(3 * A * C),
    qkvB: new Float32Array(3 * A),
    outW: new Float32Array(C * A),
    outB: new Float32Array(C),
    ln2W: new Float32Array(C).fill(1),
    ln2B: new Float32Array(C),
    fc1W: new Float32Array(F * C),
    fc1B: new Float32Array(F),
    fc2W: new Float32Array(C * F),
    fc2B: new Float32Array(C),
  };
}

/** A model of the config's shapes with zero weights (layer norms at weight 1), logit_scale ln(1/0.07). */
export function zeroClipModel(config: ClipConfig): ClipModel {
  const { text: tc, vision: vc, projectionDim: E } = config;
  const text: TextWeights = {
    tokenEmbedding: new Float32Array(tc.vocabSize * tc.hidden),
    positionEmbedding: new Float32Array(tc.maxPositions * tc.hidden),
    layers: tc.heads.map((_, l) => zeroLayer(tc, l)),
    finalLnW: new Float32Array(tc.hidden).fill(1),
    finalLnB: new Float32Array(tc.hidden),
    projection: new Float32Array(E * tc.hidden),
  };
  const vision: VisionWeights = {
    classEmbedding: new Float32Array(vc.hidden),
    patchEmbedding: new Float32Array(vc.hidden * vc.channels * vc.patchSize * vc.patchSize),
    positionEmbedding: new Float32Array(numVisionPositions(vc) * vc.hidden),
    preLnW: new Float32Array(vc.hidden).fill(1),
    preLnB: new Float32Array(vc.hidden),
    layers: vc.heads.map((_, l) => zeroLayer(vc, l)),
    postLnW: new Float32Array(vc.hidden).fill(1),
    postLnB: new Float32Array(vc.hidden),
    projection: new Float32Array(E * vc.hidden),
  };
  return { config, weights: { text, vision, logitScale: new Float32Array([Math.log(1 / 0.07)]) } };
}

export interface InitOptions {
  /** Standard deviation of every weight matrix, embedding and linear bias. Default 0.02 (HF initializer_range). */
  std?: number;
  /** Also randomise layer-norm weights (1 + N(0, std)) and biases (N(0, std)); for tests that must see them. */
  perturbNorms?: boolean;
}

/**
 * Fill a model's weights from a seeded stream: matrices, embeddings and linear biases ~ N(0, std); layer norms
 * weight 1, bias 0; logit_scale ln(1/0.07). Deviation from HF on purpose: HF zeroes linear biases; ours are random
 * so tests notice any bias layout mistake (q/k/v order, transposes). Fill order: text tower, vision tower, each in
 * field order, so a given (config, seed, options) always gives the same weights.
 */
export function initFromConfig(config: ClipConfig, seed: number, opts: InitOptions = {}): ClipModel {
  const std = opts.std ?? 0.02;
  const rng = new Rng(seed);
  const model = zeroClipModel(config);
  const w = model.weights;
  const n = (a: Float32Array) => rng.fillNormal(a, 0, std);
  const norm = (wt: Float32Array, b: Float32Array) => {
    if (opts.perturbNorms) {
      rng.fillNormal(wt, 1, std);
      rng.fillNormal(b, 0, std);
    }
  };
  const layer = (L: LayerWeights) => {
    norm(L.ln1W, L.ln1B);
    n(L.qkvW);
    n(L.qkvB);
    n(L.outW);
    n(L.outB);
    norm(L.ln2W, L.ln2B);
    n(L.fc1W);
    n(L.fc1B);
    n(L.fc2W);
    n(L.fc2B);
  };
  n(w.text.tokenEmbedding);
  n(w.text.positionEmbedding);
  w.text.layers.forEach(layer);
  norm(w.text.finalLnW, w.text.finalLnB);
  n(w.text.projection);
  n(w.vision.classEmbedding);
  n(w.vision.patchEmbedding);
  n(w.vision.positionEmbedding);
  norm(w.vision.preLnW, w.vision.preLnB);
  w.vision.layers.forEach(layer);
  norm(w.vision.postLnW, w.vision.postLnB);
  n(w.vision.projection);
  return model;
}

/** A random model of a named or described geometry. */
export function initClipModel(geometry: ClipGeometry | GeometryName, seed: number, opts: InitOptions = {}): ClipModel {
  return initFromConfig(configFromGeometry(geometry), seed, opts);
}
