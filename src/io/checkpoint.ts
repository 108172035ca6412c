// HF checkpoint folder (config.json + model.safetensors or sharded index; HF or OpenAI/OpenCLIP names) <-> ClipModel.
// Dims: C hidden, A_l = NH_l·HS attention width of layer l, F_l FFN width, V vocab, T max positions, G patches, E projection.
import { firstNonFinite } from './finite.ts';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CheckpointError, ConfigError, ShapeError } from '../errors.ts';
import { numVisionPositions, parseClipConfig, serializeClipConfig } from '../model/config.ts';
import type { ClipConfig, ClipModel, LayerWeights, TowerConfig } from '../model/types.ts';
import { copyFileAtomic, writeJsonAtomic } from './atomic.ts';
import { fmtShape, numel, writeSafetensors } from './safetensors.ts';
import type { TensorToWrite, WriteDtype } from './safetensors.ts';
import { TensorStore, openWeights, readJson, WEIGHTS_FILE } from './weight-store.ts';
import { canonical, inferConfigFromOpenAi, isIgnored, isOpenAiNamed, type Transform } from './openai-names.ts';
import type { TensorRef } from './weight-store.ts';

export const CONFIG_FILE = 'config.json';
export { WEIGHTS_FILE, INDEX_FILE } from './weight-store.ts';
/** Tokenizer and preprocessor files a checkpoint folder may carry; copyAuxFiles moves them along. */
export const AUX_FILES = [
  'tokenizer.json',
  'vocab.json',
  'merges.txt',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
];

import { toStateDict } from '../model/state-dict.ts';

// ---------------------------------------------------------------------------------------------------------------
// Shapes

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
  const vision =
    vc.hidden +
    vc.hidden * vc.channels * vc.patchSize * vc.patchSize +
    numVisionPositions(vc) * vc.hidden +
    4 * vc.hidden +
    tower(vc) +
    E * vc.hidden;
  return text + vision + 1;
}

/** Throw ShapeError when a model's arrays do not have the lengths its config implies (a bug, not a user error). */
export function checkModelShapes(model: ClipModel): void {
  const c = model.config;
  for (const [name, t] of [
    ['text', c.text],
    ['vision', c.vision],
  ] as const) {
    const n = name === 'text' ? model.weights.text.layers.length : model.weights.vision.layers.length;
    if (n !== t.heads.length || t.ffn.length !== n || t.layerMap.length !== n) {
      throw new ShapeError(
        `model: ${name} tower has ${n} layer weight sets, but its config lists ${t.heads.length} head counts, ${t.ffn.length} FFN widths and ${t.layerMap.length} layer_map entries`,
      );
    }
  }
  for (const [name, t] of toStateDict(model)) {
    if (t.data.length !== numel(t.shape)) {
      throw new ShapeError(
        `model: '${name}' holds ${t.data.length} values, expected ${fmtShape(t.shape)} = ${numel(t.shape)} from the config`,
      );
    }
  }
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
      throw new CheckpointError(
        `${ref.reader.path}: tensors '${prev.src}' and '${src}' both provide '${c.key}'; keep only one naming`,
      );
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
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      throw new CheckpointError(
        `${e.ref.reader.path}: tensor '${e.src}' holds ${data[bad]} at element ${bad}; weights must be finite numbers ` +
          '(a corrupt file or a diverged training run); mope-clip refuses to load it',
      );
    }
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
        positionEmbedding: take('vision_model.embeddings.position_embedding.weight', [
          numVisionPositions(vc),
          vc.hidden,
        ]),
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
    const list = extra
      .slice(0, 5)
      .map(([, e]) => `'${e.src}' ${fmtShape(e.ref.reader.info(e.src).shape)} in ${e.ref.reader.path}`);
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
    try {
      copyFileAtomic(src, dst);
    } catch (e) {
      throw new CheckpointError(`${src}: cannot copy to ${dst} (${(e as Error).message})`);
    }
    copied.push(f);
  }
  return copied;
}
