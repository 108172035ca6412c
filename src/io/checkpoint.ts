// HF checkpoint folder (config.json + model.safetensors or sharded index; HF or OpenAI/OpenCLIP names) <-> ClipModel.
// Dims: C hidden, A_l = NH_l·HS attention width of layer l, F_l FFN width, V vocab, T max positions, G patches, E projection.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, ConfigError, ShapeError } from '../errors.ts';
import { numVisionPositions, parseClipConfig, serializeClipConfig } from '../model/config.ts';
import type { ClipConfig, ClipModel, LayerWeights, TowerConfig } from '../model/types.ts';
import { writeJsonAtomic } from './atomic.ts';
import { SafetensorsReader, fmtShape, numel, writeSafetensors } from './safetensors.ts';
import type { TensorToWrite, WriteDtype } from './safetensors.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** Single-file weight names tried in order (the OpenCLIP hub name last). */
const SINGLE_FILES = [WEIGHTS_FILE, 'open_clip_model.safetensors'];
const PICKLE_FILES = ['pytorch_model.bin', 'open_clip_pytorch_model.bin', 'model.pt'];
/** Tokenizer and preprocessor files a checkpoint folder may carry; copyAuxFiles moves them along. */
export const AUX_FILES = [
  'tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json',
];

export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

// ---------------------------------------------------------------------------------------------------------------
// State dict (HF names) and shapes

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
  out.set('text_model.embeddings.token_embedding.weight', { shape: [tc.vocabSize, tc.hidden], data: w.text.tokenEmbedding });
  out.set('text_model.embeddings.position_embedding.weight', { shape: [tc.maxPositions, tc.hidden], data: w.text.positionEmbedding });
  w.text.layers.forEach((L, l) => layerState(tc, l, L, 'text_model', out));
  out.set('text_model.final_layer_norm.weight', { shape: [tc.hidden], data: w.text.finalLnW });
  out.set('text_model.final_layer_norm.bias', { shape: [tc.hidden], data: w.text.finalLnB });
  const P = vc.patchSize;
  out.set('vision_model.embeddings.class_embedding', { shape: [vc.hidden], data: w.vision.classEmbedding });
  out.set('vision_model.embeddings.patch_embedding.weight', { shape: [vc.hidden, vc.channels, P, P], data: w.vision.patchEmbedding });
  out.set('vision_model.embeddings.position_embedding.weight', { shape: [numVisionPositions(vc), vc.hidden], data: w.vision.positionEmbedding });
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

/** Number of trainable scalars (every weight array, logit_scale included). */
export function countParameters(model: ClipModel): number {
  let n = 0;
  for (const t of toStateDict(model).values()) n += t.data.length;
  return n;
}

/** Parameter count implied by a config alone (no weights allocated): what countParameters gives for its model. */
export function countConfigParameters(config: ClipConfig): number {
  const tower = (t: TowerConfig) =>
    t.heads.reduce((s, h, l) => {
      const C = t.hidden;
      const A = h * t.headDim;
      const F = t.ffn[l]!;
      return s + 3 * A * C + 3 * A + C * A + C + F * C + F + C * F + C + 4 * C;
    }, 0);
  const { text: tc, vision: vc, projectionDim: E } = config;
  const text = tc.vocabSize * tc.hidden + tc.maxPositions * tc.hidden + tower(tc) + 2 * tc.hidden + E * tc.hidden;
  const vision = vc.hidden + vc.hidden * vc.channels * vc.patchSize * vc.patchSize + numVisionPositions(vc) * vc.hidden +
    4 * vc.hidden + tower(vc) + E * vc.hidden;
  return text + vision + 1;
}

/** Throw ShapeError when a model's arrays do not have the lengths its config implies (a bug, not a user error). */
export function checkModelShapes(model: ClipModel): void {
  const c = model.config;
  for (const [name, t] of [['text', c.text], ['vision', c.vision]] as const) {
    const n = name === 'text' ? model.weights.text.layers.length : model.weights.vision.layers.length;
    if (n !== t.heads.length || t.ffn.length !== n || t.layerMap.length !== n) {
      throw new ShapeError(
        `model: ${name} tower has ${n} layer weight sets, but its config lists ${t.heads.length} head counts, ${t.ffn.length} FFN widths and ${t.layerMap.length} layer_map entries`,
      );
    }
  }
  for (const [name, t] of toStateDict(model)) {
    if (t.data.length !== numel(t.shape)) {
      throw new ShapeError(`model: '${name}' holds ${t.data.length} values, expected ${fmtShape(t.shape)} = ${numel(t.shape)} from the config`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading tensors from one or many safetensors files

interface TensorRef {
  reader: SafetensorsReader;
  name: string;
}

class TensorStore {
  readonly refs = new Map<string, TensorRef>();
  readonly readers: SafetensorsReader[] = [];
  constructor(readonly describe: string) {}

  add(reader: SafetensorsReader): void {
    this.readers.push(reader);
    for (const name of reader.names()) {
      const prev = this.refs.get(name);
      if (prev) {
        throw new CheckpointError(`${reader.path}: tensor '${name}' also appears in ${prev.reader.path}; each tensor must be stored once`);
      }
      this.refs.set(name, { reader, name });
    }
  }

  close(): void {
    for (const r of this.readers) r.close();
  }
}

function readJson(path: string, err: typeof CheckpointError | typeof ConfigError): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new err(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new err(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function openWeights(dir: string, file?: string): TensorStore {
  const single = file ? [file] : SINGLE_FILES.map((f) => join(dir, f)).filter((p) => existsSync(p));
  if (single.length > 0) {
    const store = new TensorStore(single[0]!);
    try {
      store.add(SafetensorsReader.open(single[0]!));
    } catch (e) {
      store.close();
      throw e;
    }
    return store;
  }
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) {
    const index = readJson(indexPath, CheckpointError) as Record<string, unknown>;
    const wm = index?.weight_map;
    if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
      throw new CheckpointError(`${indexPath}: field 'weight_map' must be an object mapping tensor names to shard files`);
    }
    const map = wm as Record<string, unknown>;
    const shards = new Map<string, SafetensorsReader>();
    const store = new TensorStore(indexPath);
    try {
      for (const [name, shard] of Object.entries(map)) {
        if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard === '..') {
          throw new CheckpointError(`${indexPath}: weight_map['${name}'] must be a shard file name in the same folder, found ${JSON.stringify(shard)}`);
        }
        let r = shards.get(shard);
        if (!r) {
          const p = join(dir, shard);
          if (!existsSync(p)) throw new CheckpointError(`${indexPath}: shard '${shard}' (holding '${name}') does not exist in ${dir}`);
          r = SafetensorsReader.open(p);
          shards.set(shard, r);
          store.add(r);
        }
        if (!r.has(name)) throw new CheckpointError(`${indexPath}: weight_map puts tensor '${name}' in '${shard}', but ${r.path} has no such tensor`);
      }
    } catch (e) {
      for (const r of shards.values()) r.close();
      throw e;
    }
    if (shards.size === 0) throw new CheckpointError(`${indexPath}: weight_map is empty`);
    return store;
  }
  const pickle = PICKLE_FILES.find((f) => existsSync(join(dir, f)));
  if (pickle) {
    throw new CheckpointError(
      `${join(dir, pickle)}: PyTorch pickle weights are not supported; convert them to safetensors first (e.g. safetensors.torch.save_file(torch.load(path), "model.safetensors"))`,
    );
  }
  throw new CheckpointError(`${dir}: no ${WEIGHTS_FILE} or ${INDEX_FILE} found; expected a Hugging Face CLIP checkpoint folder`);
}

// ---------------------------------------------------------------------------------------------------------------
// Name normalisation: OpenAI / OpenCLIP -> HF, with a transform tag

type Transform = 'none' | 'transpose' | 'fused';

interface Canon {
  key: string; // HF name, or `<layer>.self_attn.in_proj.weight|bias` for a fused OpenAI q/k/v
  transform: Transform;
}

const IGNORED = new Set(['input_resolution', 'context_length', 'vocab_size']);

function isIgnored(name: string): boolean {
  return name.endsWith('position_ids') || IGNORED.has(name);
}

const OPENAI_FIXED: Record<string, Canon> = {
  'token_embedding.weight': { key: 'text_model.embeddings.token_embedding.weight', transform: 'none' },
  positional_embedding: { key: 'text_model.embeddings.position_embedding.weight', transform: 'none' },
  'ln_final.weight': { key: 'text_model.final_layer_norm.weight', transform: 'none' },
  'ln_final.bias': { key: 'text_model.final_layer_norm.bias', transform: 'none' },
  text_projection: { key: 'text_projection.weight', transform: 'transpose' },
  'visual.conv1.weight': { key: 'vision_model.embeddings.patch_embedding.weight', transform: 'none' },
  'visual.class_embedding': { key: 'vision_model.embeddings.class_embedding', transform: 'none' },
  'visual.positional_embedding': { key: 'vision_model.embeddings.position_embedding.weight', transform: 'none' },
  'visual.ln_pre.weight': { key: 'vision_model.pre_layrnorm.weight', transform: 'none' },
  'visual.ln_pre.bias': { key: 'vision_model.pre_layrnorm.bias', transform: 'none' },
  'visual.ln_post.weight': { key: 'vision_model.post_layernorm.weight', transform: 'none' },
  'visual.ln_post.bias': { key: 'vision_model.post_layernorm.bias', transform: 'none' },
  'visual.proj': { key: 'visual_projection.weight', transform: 'transpose' },
};

const OPENAI_BLOCK: Record<string, Canon> = {
  'ln_1.weight': { key: 'layer_norm1.weight', transform: 'none' },
  'ln_1.bias': { key: 'layer_norm1.bias', transform: 'none' },
  'ln_2.weight': { key: 'layer_norm2.weight', transform: 'none' },
  'ln_2.bias': { key: 'layer_norm2.bias', transform: 'none' },
  'mlp.c_fc.weight': { key: 'mlp.fc1.weight', transform: 'none' },
  'mlp.c_fc.bias': { key: 'mlp.fc1.bias', transform: 'none' },
  'mlp.c_proj.weight': { key: 'mlp.fc2.weight', transform: 'none' },
  'mlp.c_proj.bias': { key: 'mlp.fc2.bias', transform: 'none' },
  'attn.in_proj_weight': { key: 'self_attn.in_proj.weight', transform: 'fused' },
  'attn.in_proj_bias': { key: 'self_attn.in_proj.bias', transform: 'fused' },
  'attn.out_proj.weight': { key: 'self_attn.out_proj.weight', transform: 'none' },
  'attn.out_proj.bias': { key: 'self_attn.out_proj.bias', transform: 'none' },
};

const BLOCK_RE = /^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$/;

/** HF key for a source name; names that are already HF (or unknown) map to themselves. */
function canonical(name: string): Canon {
  const fixed = OPENAI_FIXED[name];
  if (fixed) return fixed;
  const m = BLOCK_RE.exec(name);
  if (m) {
    const b = OPENAI_BLOCK[m[3]!];
    const tower = m[1] ? 'vision_model' : 'text_model';
    if (b) return { key: `${tower}.encoder.layers.${Number(m[2])}.${b.key}`, transform: b.transform };
  }
  // HF names, OpenCLIP's nn.Linear `text_projection.weight` (already [E, C]) and `logit_scale` land here.
  return { key: name, transform: 'none' };
}

function isOpenAiNamed(names: string[]): boolean {
  return names.some((n) => n in OPENAI_FIXED || BLOCK_RE.test(n));
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry inference for OpenAI / OpenCLIP checkpoints without config.json (as openai/CLIP build_model does)

function inferConfigFromOpenAi(store: TensorStore, where: string): ClipConfig {
  const shape = (n: string): number[] => {
    const r = store.refs.get(n);
    if (!r) throw new CheckpointError(`${store.describe}: cannot infer the model geometry without config.json: tensor '${n}' is missing`);
    return r.reader.info(n).shape;
  };
  if (![...store.refs.keys()].includes('visual.proj')) {
    const resnet = [...store.refs.keys()].some((n) => n.startsWith('visual.attnpool') || n.startsWith('visual.layer1'));
    throw new CheckpointError(
      resnet
        ? `${store.describe}: this is a ResNet CLIP (visual.attnpool / visual.layer*), which mope-clip does not support; use a ViT model`
        : `${store.describe}: no config.json and no 'visual.proj' tensor, so this is neither an HF checkpoint folder nor an OpenAI ViT state dict`,
    );
  }
  const towerLayers = (prefix: string): { heads: number[]; ffn: number[]; width: number; n: number } => {
    const idx = new Set<number>();
    for (const n of store.refs.keys()) {
      const m = BLOCK_RE.exec(n);
      if (m && Boolean(m[1]) === (prefix === 'visual.')) idx.add(Number(m[2]));
    }
    const n = idx.size;
    const heads: number[] = [];
    const ffn: number[] = [];
    let width = 0;
    for (let l = 0; l < n; l++) {
      const qkv = shape(`${prefix}transformer.resblocks.${l}.attn.in_proj_weight`);
      const fc = shape(`${prefix}transformer.resblocks.${l}.mlp.c_fc.weight`);
      width = qkv[1]!;
      const A = qkv[0]! / 3;
      if (!Number.isInteger(A) || A % 64 !== 0) {
        throw new CheckpointError(
          `${store.describe}: cannot infer the head count of '${prefix}transformer.resblocks.${l}.attn.in_proj_weight' ${fmtShape(qkv)}: OpenAI CLIP uses 64-wide heads, and ${qkv[0]} / 3 is not a multiple of 64; add a config.json`,
        );
      }
      heads.push(A / 64);
      ffn.push(fc[0]!);
    }
    return { heads, ffn, width, n };
  };
  const conv = shape('visual.conv1.weight');
  const vw = conv[0]!;
  const patch = conv[3]!;
  const grid = Math.round(Math.sqrt(shape('visual.positional_embedding')[0]! - 1));
  const tw = shape('ln_final.weight')[0]!;
  const tp = store.refs.has('text_projection') ? shape('text_projection')[1]! : shape('text_projection.weight')[0]!;
  for (const [w, what] of [[vw, 'vision width (visual.conv1.weight)'], [tw, 'text width (ln_final.weight)']] as const) {
    if (w % 64 !== 0) {
      throw new CheckpointError(`${store.describe}: cannot infer head counts: the ${what} ${w} is not a multiple of 64 (OpenAI heads are 64 wide); add a config.json`);
    }
  }
  const t = towerLayers('');
  const v = towerLayers('visual.');
  const tower = (x: typeof t, width: number) => ({
    hidden_size: width,
    num_attention_heads: width / 64,
    num_hidden_layers: x.n,
    intermediate_size: x.ffn[0] ?? 4 * width,
    hidden_act: 'quick_gelu', // OpenAI weights; an OpenCLIP gelu model needs a config.json saying so (clip-formats §2.4)
    layer_norm_eps: 1e-5,
  });
  const raw: Record<string, unknown> = {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: tp,
    text_config: {
      ...tower(t, tw),
      vocab_size: shape('token_embedding.weight')[0],
      max_position_embeddings: shape('positional_embedding')[0],
    },
    vision_config: { ...tower(v, vw), image_size: patch * grid, patch_size: patch, num_channels: conv[1] },
  };
  const widths = (x: typeof t, width: number) =>
    x.heads.some((h) => h !== width / 64) || x.ffn.some((f) => f !== x.ffn[0])
      ? { heads: x.heads, intermediate: x.ffn, layer_map: x.heads.map((_, i) => i) }
      : undefined;
  const mope = { text: widths(t, tw), vision: widths(v, vw) };
  if (mope.text || mope.vision) raw.mope_clip = mope;
  return parseClipConfig(raw, where);
}

// ---------------------------------------------------------------------------------------------------------------
// Building the model from a store

function buildModel(config: ClipConfig, store: TensorStore): ClipModel {
  const canon = new Map<string, { src: string; transform: Transform; ref: TensorRef }>();
  for (const [src, ref] of store.refs) {
    if (isIgnored(src)) continue;
    const c = canonical(src);
    const prev = canon.get(c.key);
    if (prev) {
      throw new CheckpointError(`${ref.reader.path}: tensors '${prev.src}' and '${src}' both provide '${c.key}'; keep only one naming`);
    }
    canon.set(c.key, { src, transform: c.transform, ref });
  }
  const used = new Set<string>();

  const take = (key: string, expected: number[], alt: number[][] = []): Float32Array => {
    const e = canon.get(key);
    if (!e) {
      throw new CheckpointError(
        `${store.describe}: missing tensor '${key}' (expected shape ${fmtShape(expected)} for this config.json)`,
      );
    }
    const info = e.ref.reader.info(e.src);
    const want = e.transform === 'transpose' ? [expected[1]!, expected[0]!] : expected;
    const same = (s: number[]) => s.length === info.shape.length && s.every((d, i) => d === info.shape[i]);
    if (!same(want) && !alt.some(same)) {
      throw new CheckpointError(
        `${e.ref.reader.path}: tensor '${e.src}' has shape ${fmtShape(info.shape)}, expected ${fmtShape(want)} for this config.json` +
          (e.src !== key ? ` (it maps to '${key}')` : ''),
      );
    }
    used.add(key);
    const data = e.ref.reader.readFloat32(e.src);
    if (e.transform !== 'transpose') return data;
    const [rows, cols] = [info.shape[0]!, info.shape[1]!]; // source [in, out] -> ours [out, in]
    const out = new Float32Array(data.length);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j]!;
    return out;
  };

  const layer = (t: TowerConfig, prefix: string, l: number): LayerWeights => {
    const C = t.hidden;
    const A = t.heads[l]! * t.headDim;
    const F = t.ffn[l]!;
    const p = `${prefix}.encoder.layers.${l}.`;
    let qkvW: Float32Array;
    let qkvB: Float32Array;
    if (canon.has(`${p}self_attn.in_proj.weight`)) {
      qkvW = take(`${p}self_attn.in_proj.weight`, [3 * A, C]);
      qkvB = take(`${p}self_attn.in_proj.bias`, [3 * A]);
    } else {
      qkvW = new Float32Array(3 * A * C);
      qkvB = new Float32Array(3 * A);
      (['q', 'k', 'v'] as const).forEach((x, i) => {
        qkvW.set(take(`${p}self_attn.${x}_proj.weight`, [A, C]), i * A * C);
        qkvB.set(take(`${p}self_attn.${x}_proj.bias`, [A]), i * A);
      });
    }
    return {
      ln1W: take(`${p}layer_norm1.weight`, [C]),
      ln1B: take(`${p}layer_norm1.bias`, [C]),
      qkvW,
      qkvB,
      outW: take(`${p}self_attn.out_proj.weight`, [C, A]),
      outB: take(`${p}self_attn.out_proj.bias`, [C]),
      ln2W: take(`${p}layer_norm2.weight`, [C]),
      ln2B: take(`${p}layer_norm2.bias`, [C]),
      fc1W: take(`${p}mlp.fc1.weight`, [F, C]),
      fc1B: take(`${p}mlp.fc1.bias`, [F]),
      fc2W: take(`${p}mlp.fc2.weight`, [C, F]),
      fc2B: take(`${p}mlp.fc2.bias`, [C]),
    };
  };

  const tc = config.text;
  const vc = config.vision;
  const E = config.projectionDim;
  const P = vc.patchSize;
  const model: ClipModel = {
    config,
    weights: {
      text: {
        tokenEmbedding: take('text_model.embeddings.token_embedding.weight', [tc.vocabSize, tc.hidden]),
        positionEmbedding: take('text_model.embeddings.position_embedding.weight', [tc.maxPositions, tc.hidden]),
        layers: tc.heads.map((_, l) => layer(tc, 'text_model', l)),
        finalLnW: take('text_model.final_layer_norm.weight', [tc.hidden]),
        finalLnB: take('text_model.final_layer_norm.bias', [tc.hidden]),
        projection: take('text_projection.weight', [E, tc.hidden]),
      },
      vision: {
        classEmbedding: take('vision_model.embeddings.class_embedding', [vc.hidden]),
        patchEmbedding: take('vision_model.embeddings.patch_embedding.weight', [vc.hidden, vc.channels, P, P]),
        positionEmbedding: take('vision_model.embeddings.position_embedding.weight', [numVisionPositions(vc), vc.hidden]),
        preLnW: take('vision_model.pre_layrnorm.weight', [vc.hidden]),
        preLnB: take('vision_model.pre_layrnorm.bias', [vc.hidden]),
        layers: vc.heads.map((_, l) => layer(vc, 'vision_model', l)),
        postLnW: take('vision_model.post_layernorm.weight', [vc.hidden]),
        postLnB: take('vision_model.post_layernorm.bias', [vc.hidden]),
        projection: take('visual_projection.weight', [E, vc.hidden]),
      },
      // Some converters store the scalar as [1]; same value, so accept it.
      logitScale: take('logit_scale', [], [[1]]),
    },
  };

  const extra = [...canon.entries()].filter(([k]) => !used.has(k));
  if (extra.length > 0) {
    const list = extra.slice(0, 5).map(([, e]) => `'${e.src}' ${fmtShape(e.ref.reader.info(e.src).shape)} in ${e.ref.reader.path}`);
    const more = extra.length > 5 ? ` and ${extra.length - 5} more` : '';
    throw new CheckpointError(
      `${store.describe}: unexpected tensor${extra.length > 1 ? 's' : ''} not used by a CLIP model with this config.json: ${list.join('; ')}${more}` +
        ` (a config.json with fewer layers or the wrong model type? num_hidden_layers: text ${tc.heads.length}, vision ${vc.heads.length})`,
    );
  }
  return model;
}

// ---------------------------------------------------------------------------------------------------------------
// Public load / save

/** Read and parse `<dir>/config.json`. */
export function loadConfig(dir: string): ClipConfig {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new ConfigError(`${path}: not found; a checkpoint folder needs config.json`);
  return parseClipConfig(readJson(path, ConfigError), path);
}

/**
 * Load a checkpoint folder (or one .safetensors file, with config.json beside it when there is one).
 * Weights: model.safetensors, else model.safetensors.index.json shards, else open_clip_model.safetensors.
 * HF and OpenAI/OpenCLIP names are accepted; without config.json, OpenAI-named weights define the geometry.
 * Synchronous: tensors are read one at a time with readSync, so memory stays near the model's size.
 */
export function loadCheckpoint(path: string): ClipModel {
  let dir = path;
  let file: string | undefined;
  if (existsSync(path) && statSync(path).isFile()) {
    dir = dirname(path);
    file = path;
  } else if (!existsSync(path)) {
    throw new CheckpointError(`${path}: checkpoint folder does not exist`);
  }
  const store = openWeights(dir, file);
  try {
    const configPath = join(dir, CONFIG_FILE);
    let config: ClipConfig;
    if (existsSync(configPath)) {
      config = parseClipConfig(readJson(configPath, ConfigError), configPath);
    } else if (isOpenAiNamed([...store.refs.keys()])) {
      config = inferConfigFromOpenAi(store, `${store.describe} (geometry inferred from OpenAI tensor names)`);
    } else {
      throw new ConfigError(`${configPath}: not found; HF-named weights need config.json beside them`);
    }
    return buildModel(config, store);
  } finally {
    store.close();
  }
}

export interface SaveOptions {
  /** Storage dtype of the weights. Default F32. */
  dtype?: WriteDtype;
}

/**
 * Write config.json and model.safetensors (HF names, q/k/v split) into `dir`, each atomically. Tokenizer and
 * preprocessor files are not written here; see copyAuxFiles.
 */
export function saveCheckpoint(model: ClipModel, dir: string, opts: SaveOptions = {}): void {
  checkModelShapes(model);
  const dtype = opts.dtype ?? 'F32';
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of toStateDict(model)) tensors.set(name, { shape: t.shape, data: t.data });
  writeSafetensors(join(dir, WEIGHTS_FILE), tensors, { dtype });
  const cfg = serializeClipConfig(model.config);
  cfg.torch_dtype = dtype === 'F16' ? 'float16' : dtype === 'BF16' ? 'bfloat16' : 'float32';
  writeJsonAtomic(join(dir, CONFIG_FILE), cfg);
}

/** Copy the tokenizer / preprocessor files (AUX_FILES) that exist in srcDir into dstDir. Returns the names copied. */
export function copyAuxFiles(srcDir: string, dstDir: string): string[] {
  const copied: string[] = [];
  mkdirSync(dstDir, { recursive: true });
  for (const f of AUX_FILES) {
    const src = join(srcDir, f);
    if (!existsSync(src)) continue;
    const dst = join(dstDir, f);
    const tmp = join(dstDir, `.${basename(f)}.tmp-${process.pid}-${Date.now()}`);
    try {
      copyFileSync(src, tmp);
      renameSync(tmp, dst);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new CheckpointError(`${src}: cannot copy to ${dst} (${(e as Error).message})`);
    }
    copied.push(f);
  }
  return copied;
}
