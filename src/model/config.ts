// config.json (HF CLIPConfig + our `mope_clip` per-layer widths) <-> ClipConfig; validation with ConfigError.
// Dims: C hidden, NH heads (original count = C / HS), HS head size, F FFN width, L layers, E projection dim.
import { ConfigError } from '../errors.ts';
import type { Activation, ClipConfig, TextConfig, TowerConfig, VisionConfig } from './types.ts';

type Json = Record<string, unknown>;

/** HF CLIPTextConfig defaults. */
export const TEXT_DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  projection_dim: 512,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  initializer_range: 0.02,
  initializer_factor: 1.0,
  pad_token_id: 1,
  bos_token_id: 49406,
  eos_token_id: 49407,
} as const;

/** HF CLIPVisionConfig defaults. */
export const VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  projection_dim: 512,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  initializer_range: 0.02,
  initializer_factor: 1.0,
} as const;

export const DEFAULT_PROJECTION_DIM = 512;
export const LOGIT_SCALE_INIT = 2.6592;
/** The real CLIP end-of-text id; legacy configs say 2 and mean "pool at argmax(input_ids)". */
export const CLIP_EOS_ID = 49407;

/** Largest accepted size of any one dimension (hidden, FFN, positions, image size, ...). */
export const MAX_DIM = 1 << 20;
/** Largest accepted layer count. */
export const MAX_LAYERS = 4096;
/** Largest accepted parameter count of one model (2^31 floats = 8 GiB in fp32), checked before allocating weights. */
export const MAX_PARAMS = 2 ** 31;
/** Largest estimated activation memory of one batch (batchActivationBytes), 8 GiB. */
export const MAX_BATCH_BYTES = 8 * 2 ** 30;
/** Token ids are int32. */
const MAX_ID = 2 ** 31 - 1;
/** Fields where null means "unset" in HF configs. */
const NULLABLE = new Set(['pad_token_id', 'bos_token_id', 'eos_token_id']);
const EXPECTED: Record<string, string> = {
  hidden_act: '"quick_gelu" or "gelu"',
  layer_norm_eps: 'a positive number',
};

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class Fields {
  constructor(
    readonly file: string,
    readonly prefix: string,
    readonly obj: Json,
    readonly defaults: Json,
  ) {}

  private where(key: string): string {
    return `${this.file}: field '${this.prefix}${key}'`;
  }

  /** An absent field takes its default; null is refused (HF would keep None and fail later), except for token ids. */
  private get(key: string): unknown {
    const v = this.obj[key];
    if (v === undefined || (v === null && NULLABLE.has(key))) return this.defaults[key];
    if (v === null) {
      throw new ConfigError(
        `${this.where(key)} is null; expected ${EXPECTED[key] ?? 'an integer'}` +
          (this.defaults[key] !== undefined
            ? ` (remove the field to use the default ${JSON.stringify(this.defaults[key])})`
            : ''),
      );
    }
    return v;
  }

  int(key: string, min: number, max = MAX_DIM): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw new ConfigError(`${this.where(key)} must be an integer, found ${JSON.stringify(v)}`);
    }
    if (v < min) throw new ConfigError(`${this.where(key)} must be at least ${min}, found ${v}`);
    if (v > max) throw new ConfigError(`${this.where(key)} must be at most ${max}, found ${v}`);
    return v;
  }

  posNumber(key: string): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ConfigError(`${this.where(key)} must be a positive number, found ${JSON.stringify(v)}`);
    }
    return v;
  }

  act(key: string): Activation {
    const v = this.get(key);
    if (v === 'quick_gelu' || v === 'gelu') return v;
    if (v === 'gelu_new' || v === 'gelu_pytorch_tanh' || v === 'gelu_fast' || v === 'gelu_python') {
      throw new ConfigError(
        `${this.where(key)} is "${v}", which is unsupported: mope-clip implements "quick_gelu" (OpenAI CLIP) and "gelu" (exact erf, OpenCLIP/LAION)`,
      );
    }
    throw new ConfigError(`${this.where(key)} must be "quick_gelu" or "gelu", found ${JSON.stringify(v)}`);
  }
}

/**
 * Effective sub-config the way HF's CLIPConfig builds it: when a legacy `*_config_dict` is present, a full
 * default sub-config is built from it and overwrites every field of `*_config`.
 */
function effectiveSub(file: string, raw: Json, key: 'text_config' | 'vision_config', defaults: Json): Json {
  const sub = raw[key];
  if (sub !== undefined && sub !== null && !isObj(sub)) {
    throw new ConfigError(`${file}: field '${key}' must be an object, found ${JSON.stringify(sub)}`);
  }
  let eff: Json = { ...(sub ?? {}) };
  const legacy = raw[`${key}_dict`];
  if (legacy !== undefined && legacy !== null) {
    if (!isObj(legacy))
      throw new ConfigError(`${file}: field '${key}_dict' must be an object, found ${JSON.stringify(legacy)}`);
    eff = { ...eff, ...defaults, ...legacy };
  }
  return eff;
}

function intList(file: string, where: string, v: unknown, len: number, min: number, max: number): number[] {
  if (!Array.isArray(v))
    throw new ConfigError(`${file}: field '${where}' must be an array of integers, found ${JSON.stringify(v)}`);
  if (v.length !== len) {
    throw new ConfigError(`${file}: field '${where}' has ${v.length} entries, expected ${len} (num_hidden_layers)`);
  }
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
      throw new ConfigError(
        `${file}: field '${where}[${i}]' must be an integer in [${min}, ${max}], found ${JSON.stringify(x)}`,
      );
    }
  });
  return v as number[];
}

function parseTower(file: string, raw: Json, tower: 'text' | 'vision', sub: Json, defaults: Json): TowerConfig {
  const prefix = `${tower}_config.`;
  const f = new Fields(file, prefix, sub, defaults);
  const hidden = f.int('hidden_size', 1);
  const origHeads = f.int('num_attention_heads', 1);
  const layers = f.int('num_hidden_layers', 0, MAX_LAYERS);
  const inter = f.int('intermediate_size', 0);
  if (hidden % origHeads !== 0) {
    throw new ConfigError(
      `${file}: field '${prefix}hidden_size' (${hidden}) is not divisible by '${prefix}num_attention_heads' (${origHeads})`,
    );
  }
  const act = f.act('hidden_act');
  const eps = f.posNumber('layer_norm_eps');
  let heads = new Array<number>(layers).fill(origHeads);
  let ffn = new Array<number>(layers).fill(inter);
  let layerMap = Array.from({ length: layers }, (_, i) => i);
  const mope = raw.mope_clip;
  if (mope !== undefined && mope !== null) {
    if (!isObj(mope))
      throw new ConfigError(`${file}: field 'mope_clip' must be an object, found ${JSON.stringify(mope)}`);
    const w = mope[tower];
    if (w !== undefined && w !== null) {
      if (!isObj(w))
        throw new ConfigError(`${file}: field 'mope_clip.${tower}' must be an object, found ${JSON.stringify(w)}`);
      const p = `mope_clip.${tower}.`;
      if (w.heads !== undefined) heads = intList(file, `${p}heads`, w.heads, layers, 0, origHeads);
      if (w.intermediate !== undefined)
        ffn = intList(file, `${p}intermediate`, w.intermediate, layers, 0, Number.MAX_SAFE_INTEGER);
      if (w.layer_map !== undefined) {
        layerMap = intList(file, `${p}layer_map`, w.layer_map, layers, 0, Number.MAX_SAFE_INTEGER);
        for (let i = 1; i < layerMap.length; i++) {
          if (layerMap[i]! <= layerMap[i - 1]!) {
            throw new ConfigError(
              `${file}: field '${p}layer_map' must be strictly increasing, found ${JSON.stringify(layerMap)}`,
            );
          }
        }
      }
    }
  }
  return { hidden, headDim: hidden / origHeads, heads: [...heads], ffn: [...ffn], layerMap: [...layerMap], act, eps };
}

/** Parse a config.json object (HF CLIPConfig, optionally with `mope_clip`). `file` names the file in errors. */
export function parseClipConfig(json: unknown, file = 'config.json'): ClipConfig {
  if (!isObj(json))
    throw new ConfigError(`${file}: must hold a JSON object, found ${JSON.stringify(json)?.slice(0, 80)}`);
  const raw = json;
  if (raw.model_type !== undefined && raw.model_type !== 'clip') {
    throw new ConfigError(
      `${file}: field 'model_type' is ${JSON.stringify(raw.model_type)}, expected "clip" (a CLIPModel config)`,
    );
  }
  const tSub = effectiveSub(file, raw, 'text_config', TEXT_DEFAULTS);
  const vSub = effectiveSub(file, raw, 'vision_config', VISION_DEFAULTS);

  const tf = new Fields(file, 'text_config.', tSub, TEXT_DEFAULTS);
  const rawEos = tf.int('eos_token_id', 0, MAX_ID);
  const legacyArgmaxPooling = rawEos === 2;
  const text: TextConfig = {
    ...parseTower(file, raw, 'text', tSub, TEXT_DEFAULTS),
    vocabSize: tf.int('vocab_size', 1, MAX_ID),
    maxPositions: tf.int('max_position_embeddings', 1),
    bosTokenId: tf.int('bos_token_id', 0, MAX_ID),
    eosTokenId: legacyArgmaxPooling ? CLIP_EOS_ID : rawEos,
    padTokenId: tf.int('pad_token_id', 0, MAX_ID),
    legacyArgmaxPooling,
  };

  const vf = new Fields(file, 'vision_config.', vSub, VISION_DEFAULTS);
  const imageSize = vf.int('image_size', 1);
  const patchSize = vf.int('patch_size', 1);
  if (patchSize > imageSize) {
    throw new ConfigError(
      `${file}: field 'vision_config.patch_size' (${patchSize}) is larger than 'vision_config.image_size' (${imageSize})`,
    );
  }
  const vision: VisionConfig = {
    ...parseTower(file, raw, 'vision', vSub, VISION_DEFAULTS),
    imageSize,
    patchSize,
    channels: vf.int('num_channels', 1),
  };

  const top = new Fields(file, '', raw, { projection_dim: DEFAULT_PROJECTION_DIM });
  const projectionDim = top.int('projection_dim', 1);
  const config = { text, vision, projectionDim, raw: structuredClone(raw) };
  checkParameterBudget(config, file);
  return config;
}

function towerLayerParams(t: TowerConfig): number {
  const C = t.hidden;
  let n = 0;
  for (let l = 0; l < t.heads.length; l++) {
    const A = t.heads[l]! * t.headDim,
      F = t.ffn[l]!;
    n += 4 * C + 4 * A * C + 3 * A + C + 2 * F * C + F + C;
  }
  return n;
}

/** Parameters (floats) of a model of this config, counted from the shapes alone. */
export function parameterCount(config: ClipConfig): number {
  const { text: t, vision: v, projectionDim: E } = config;
  const G = numVisionPositions(v);
  return (
    t.vocabSize * t.hidden +
    t.maxPositions * t.hidden +
    towerLayerParams(t) +
    2 * t.hidden +
    E * t.hidden +
    v.hidden * v.channels * v.patchSize * v.patchSize +
    v.hidden +
    G * v.hidden +
    4 * v.hidden +
    towerLayerParams(v) +
    E * v.hidden +
    1
  );
}

/** Refuses a config whose weights would exceed MAX_PARAMS, before anything is allocated. */
export function checkParameterBudget(config: ClipConfig, what: string): void {
  const n = parameterCount(config);
  if (n > MAX_PARAMS) {
    const gib = ((n * 4) / 2 ** 30).toFixed(1);
    throw new ConfigError(
      `${what}: these shapes need ${n.toExponential(2)} parameters (${gib} GiB in fp32), more than the limit of ` +
        `${MAX_PARAMS.toExponential(2)}; check the layer counts and widths`,
    );
  }
}

/** Number of vision positions: patches (integer division, as HF) plus the class token. */
export function numVisionPositions(v: VisionConfig): number {
  const g = Math.floor(v.imageSize / v.patchSize);
  return g * g + 1;
}

function towerNeedsWidths(t: TowerConfig): boolean {
  const orig = t.hidden / t.headDim;
  const uniformFfn = t.ffn.every((f) => f === t.ffn[0]);
  const identity = t.layerMap.every((m, i) => m === i);
  return !uniformFfn || !identity || t.heads.some((h) => h !== orig);
}

/**
 * A config.json object for `config` that HF's CLIPConfig also accepts.
 *
 * Choices: num_hidden_layers = kept layers; num_attention_heads = the ORIGINAL head count (hidden / head size),
 * since HF derives the head size from it and pruning never changes the head size; intermediate_size = the common
 * FFN width when all layers share one (then a width-uniform FFN-pruned model loads in HF as is), else the largest.
 * Per-layer heads / intermediate / layer_map go into the extra top-level `mope_clip` field, written for a tower only
 * when its widths differ from what the HF fields express or layers were dropped; HF ignores the field.
 * Unmodelled fields of the original config.json (architectures, torch_dtype, ...) are kept; legacy
 * `*_config_dict` blocks are dropped because HF would let them overwrite the fields written here.
 */
export function serializeClipConfig(config: ClipConfig): Record<string, unknown> {
  const raw = structuredClone(config.raw ?? {}) as Json;
  delete raw.text_config_dict;
  delete raw.vision_config_dict;
  delete raw.mope_clip;
  const sub = (t: TowerConfig, rawSub: unknown): Json => ({
    ...(isObj(rawSub) ? rawSub : {}),
    hidden_size: t.hidden,
    intermediate_size: t.ffn.length > 0 && t.ffn.every((f) => f === t.ffn[0]) ? t.ffn[0]! : Math.max(0, ...t.ffn),
    num_hidden_layers: t.heads.length,
    num_attention_heads: Math.round(t.hidden / t.headDim),
    hidden_act: t.act,
    layer_norm_eps: t.eps,
    projection_dim: config.projectionDim,
  });
  const { text: tc, vision: vc } = config;
  const text: Json = {
    ...sub(tc, raw.text_config),
    model_type: 'clip_text_model',
    vocab_size: tc.vocabSize,
    max_position_embeddings: tc.maxPositions,
    bos_token_id: tc.bosTokenId,
    eos_token_id: tc.legacyArgmaxPooling ? 2 : tc.eosTokenId,
    pad_token_id: tc.padTokenId,
  };
  const vision: Json = {
    ...sub(vc, raw.vision_config),
    model_type: 'clip_vision_model',
    image_size: vc.imageSize,
    patch_size: vc.patchSize,
    num_channels: vc.channels,
  };
  const out: Json = {
    architectures: ['CLIPModel'],
    ...raw,
    model_type: 'clip',
    projection_dim: config.projectionDim,
    logit_scale_init_value:
      typeof raw.logit_scale_init_value === 'number' ? raw.logit_scale_init_value : LOGIT_SCALE_INIT,
    text_config: text,
    vision_config: vision,
  };
  const mope: Json = {};
  for (const [name, t] of [
    ['text', tc],
    ['vision', vc],
  ] as const) {
    if (towerNeedsWidths(t)) mope[name] = { heads: [...t.heads], intermediate: [...t.ffn], layer_map: [...t.layerMap] };
  }
  if (Object.keys(mope).length > 0) out.mope_clip = mope;
  return out;
}

/** Check the internal consistency of a ClipConfig built in code (array lengths, divisibility). */
export function validateClipConfig(config: ClipConfig, what = 'config'): void {
  for (const [name, t] of [
    ['text', config.text],
    ['vision', config.vision],
  ] as const) {
    const n = t.heads.length;
    if (t.ffn.length !== n || t.layerMap.length !== n) {
      throw new ConfigError(
        `${what}: ${name} tower has ${n} head counts, ${t.ffn.length} FFN widths and ${t.layerMap.length} layer_map entries; all must equal the layer count`,
      );
    }
    if (!Number.isInteger(t.hidden / t.headDim)) {
      throw new ConfigError(`${what}: ${name} tower hidden ${t.hidden} is not a multiple of head size ${t.headDim}`);
    }
  }
  checkParameterBudget(config, what);
}

function towerActivationFloats(t: TowerConfig, T: number, training: boolean): number {
  const C = t.hidden;
  const F = Math.max(0, ...t.ffn),
    A = Math.max(0, ...t.heads) * t.headDim,
    H = Math.max(0, ...t.heads);
  const perLayer = T * (6 * C + 3 * A + 2 * F) + 2 * H * T * T;
  return 4 * T * C + perLayer * (training ? Math.max(1, t.heads.length) : 1);
}

/**
 * Estimated activation bytes of one batch of `batch` texts and images (fp32): one layer's buffers at a time for
 * inference, every layer's for training (kept for backward). An estimate to refuse absurd --batch values early.
 */
export function batchActivationBytes(config: ClipConfig, batch: number, training = false): number {
  const perSample =
    towerActivationFloats(config.text, config.text.maxPositions, training) +
    towerActivationFloats(config.vision, numVisionPositions(config.vision), training);
  return 4 * batch * perSample;
}

/**
 * Refuses a batch whose estimated activation memory for this model is over MAX_BATCH_BYTES, before any
 * allocation; `flag` names the flag in the message.
 */
export function checkBatchMemory(config: ClipConfig, batch: number, flag = '--batch', training = false): void {
  const bytes = batchActivationBytes(config, batch, training);
  if (bytes > MAX_BATCH_BYTES) {
    const fit = Math.max(1, Math.floor(MAX_BATCH_BYTES / (bytes / batch)));
    const gib = (bytes / 2 ** 30).toFixed(1);
    throw new ConfigError(
      `${flag} ${batch}: one batch would need about ${gib} GiB of activations for this model${training ? ' in training' : ''}, ` +
        `more than the ${MAX_BATCH_BYTES / 2 ** 30} GiB limit; use ${flag} ${fit} or less`,
    );
  }
}
