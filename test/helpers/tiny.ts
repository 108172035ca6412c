// Test helper: writes tiny random CLIP checkpoint folders (HF or OpenAI names, F32/F16, sharded, pruned widths).
// Dims (default tiny): text C 32, L 2, NH 4, F 64, V 49408, T 77; vision C 48, L 2, NH 4, F 96, image 32, P 8; E 24.
import { join } from 'node:path';
import { writeJsonAtomic } from '../../src/io/atomic.ts';
import { toStateDict } from '../../src/model/state-dict.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { ClipTokenizer } from '../../src/io/tokenizer.ts';
import { writeVocabMerges } from '../../src/io/tokenizer-files.ts';
import type { TensorToWrite, WriteDtype } from '../../src/io/safetensors.ts';
import { serializeClipConfig } from '../../src/model/config.ts';
import { GEOMETRIES, initClipModel } from '../../src/model/init.ts';
import type { ClipGeometry } from '../../src/model/init.ts';
import type { Activation, ClipModel } from '../../src/model/types.ts';

export { makeTempDir, removeDir } from './temp.ts';

export interface TowerWidths {
  heads?: number[];
  ffn?: number[];
  layerMap?: number[];
}

export interface TinyOptions {
  seed?: number;
  /** Activation of both towers (default quick_gelu). */
  act?: Activation;
  /** Storage dtype (default F32). */
  dtype?: WriteDtype;
  /** Full geometry override (default GEOMETRIES.tiny). */
  geometry?: ClipGeometry;
  /** Per-layer widths (pruned shapes); lengths set the layer counts. Head size stays hidden / original heads. */
  widths?: { text?: TowerWidths; vision?: TowerWidths };
  /** Tensor names to write: HF (default) or OpenAI/OpenCLIP. */
  naming?: 'hf' | 'openai';
  /** With OpenAI names, store text_projection as OpenCLIP's nn.Linear `text_projection.weight` [E, C]. */
  openClipLinearProjection?: boolean;
  /** Write config.json (default true). */
  withConfig?: boolean;
  /** Split the weights into this many shards with model.safetensors.index.json (default: one file). */
  shards?: number;
  /** Edit the tensors before writing (inject faults, add position_ids, ...). */
  mutateTensors?: (tensors: Map<string, TensorToWrite>) => void;
  /** Edit the config.json object before writing. */
  mutateConfig?: (config: Record<string, unknown>) => void;
  /** Also write vocab.json + merges.txt (the bundled OpenAI BPE) and a preprocessor_config.json for the image size. */
  withTokenizer?: boolean;
}

export function tinyGeometry(opts: TinyOptions = {}): ClipGeometry {
  const base = structuredClone(opts.geometry ?? GEOMETRIES.tiny);
  for (const tower of ['text', 'vision'] as const) {
    const g = base[tower];
    if (opts.act) g.act = opts.act;
    const w = opts.widths?.[tower];
    if (!w) continue;
    const origHeads = typeof g.heads === 'number' ? g.heads : Math.max(...g.heads);
    g.headDim = g.hidden / origHeads;
    const n = w.heads?.length ?? w.ffn?.length ?? w.layerMap?.length ?? g.layers;
    g.layers = n;
    if (w.heads) g.heads = w.heads;
    else if (typeof g.heads === 'number') g.heads = new Array<number>(n).fill(g.heads);
    if (w.ffn) g.ffn = w.ffn;
    else if (typeof g.ffn === 'number') g.ffn = new Array<number>(n).fill(g.ffn);
    if (w.layerMap) g.layerMap = w.layerMap;
  }
  return base;
}

/** The OpenAI / OpenCLIP state dict of a model (the OpenAI-to-HF name mapping, run backwards). */
export function toOpenAiStateDict(model: ClipModel, linearTextProjection = false): Map<string, TensorToWrite> {
  const sd = toStateDict(model);
  const out = new Map<string, TensorToWrite>();
  const transpose = (name: string): TensorToWrite => {
    const t = sd.get(name)!;
    const [rows, cols] = t.shape as [number, number];
    const d = new Float32Array(t.data.length);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) d[j * rows + i] = t.data[i * cols + j]!;
    return { shape: [cols, rows], data: d };
  };
  const fixed: [string, string][] = [
    ['token_embedding.weight', 'text_model.embeddings.token_embedding.weight'],
    ['positional_embedding', 'text_model.embeddings.position_embedding.weight'],
    ['ln_final.weight', 'text_model.final_layer_norm.weight'],
    ['ln_final.bias', 'text_model.final_layer_norm.bias'],
    ['visual.conv1.weight', 'vision_model.embeddings.patch_embedding.weight'],
    ['visual.class_embedding', 'vision_model.embeddings.class_embedding'],
    ['visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight'],
    ['visual.ln_pre.weight', 'vision_model.pre_layrnorm.weight'],
    ['visual.ln_pre.bias', 'vision_model.pre_layrnorm.bias'],
    ['visual.ln_post.weight', 'vision_model.post_layernorm.weight'],
    ['visual.ln_post.bias', 'vision_model.post_layernorm.bias'],
    ['logit_scale', 'logit_scale'],
  ];
  for (const [oa, hf] of fixed) out.set(oa, sd.get(hf)!);
  if (linearTextProjection) out.set('text_projection.weight', sd.get('text_projection.weight')!);
  else out.set('text_projection', transpose('text_projection.weight'));
  out.set('visual.proj', transpose('visual_projection.weight'));
  const towers = [
    ['transformer.resblocks', model.weights.text.layers, model.config.text, 'text_model'],
    ['visual.transformer.resblocks', model.weights.vision.layers, model.config.vision, 'vision_model'],
  ] as const;
  for (const [prefix, layers, tc, hfPrefix] of towers) {
    layers.forEach((L, l) => {
      const p = `${prefix}.${l}.`;
      const h = `${hfPrefix}.encoder.layers.${l}.`;
      const A = tc.heads[l]! * tc.headDim;
      out.set(`${p}attn.in_proj_weight`, { shape: [3 * A, tc.hidden], data: L.qkvW });
      out.set(`${p}attn.in_proj_bias`, { shape: [3 * A], data: L.qkvB });
      const pairs: [string, string][] = [
        ['attn.out_proj.weight', 'self_attn.out_proj.weight'],
        ['attn.out_proj.bias', 'self_attn.out_proj.bias'],
        ['ln_1.weight', 'layer_norm1.weight'],
        ['ln_1.bias', 'layer_norm1.bias'],
        ['ln_2.weight', 'layer_norm2.weight'],
        ['ln_2.bias', 'layer_norm2.bias'],
        ['mlp.c_fc.weight', 'mlp.fc1.weight'],
        ['mlp.c_fc.bias', 'mlp.fc1.bias'],
        ['mlp.c_proj.weight', 'mlp.fc2.weight'],
        ['mlp.c_proj.bias', 'mlp.fc2.bias'],
      ];
      for (const [oa, hf] of pairs) out.set(p + oa, sd.get(h + hf)!);
    });
  }
  return out;
}

/** HF CLIPImageProcessor settings for a square input of `size` pixels (the dict forms transformers.js reads). */
export function preprocessorConfig(size: number): Record<string, unknown> {
  return {
    image_processor_type: 'CLIPImageProcessor',
    do_resize: true,
    size: { shortest_edge: size },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: size, width: size },
    do_rescale: true,
    rescale_factor: 0.00392156862745098,
    do_normalize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
    do_convert_rgb: true,
  };
}

/**
 * Write a tiny random checkpoint folder into `dir` and return the model it holds (exactly the weights a loader
 * should produce, except for F16/BF16 rounding when `dtype` is not F32).
 */
export function writeTinyCheckpoint(dir: string, opts: TinyOptions = {}): ClipModel {
  const model = initClipModel(tinyGeometry(opts), opts.seed ?? 1);
  const tensors: Map<string, TensorToWrite> =
    opts.naming === 'openai'
      ? toOpenAiStateDict(model, opts.openClipLinearProjection)
      : new Map([...toStateDict(model)].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
  opts.mutateTensors?.(tensors);
  const dtype = opts.dtype ?? 'F32';
  const shards = opts.shards ?? 1;
  if (shards <= 1) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype });
  } else {
    const names = [...tensors.keys()];
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = new Map<string, TensorToWrite>();
      names.forEach((n, i) => {
        if (i % shards !== s) return;
        const t = tensors.get(n)!;
        part.set(n, t);
        weightMap[n] = file;
        total += t.data.length * (dtype === 'F32' ? 4 : 2);
      });
      writeSafetensors(join(dir, file), part, { dtype });
    }
    writeJsonAtomic(join(dir, 'model.safetensors.index.json'), {
      metadata: { total_size: total },
      weight_map: weightMap,
    });
  }
  if (opts.withConfig ?? true) {
    const cfg = serializeClipConfig(model.config);
    opts.mutateConfig?.(cfg);
    writeJsonAtomic(join(dir, 'config.json'), cfg);
  }
  if (opts.withTokenizer) {
    writeVocabMerges(ClipTokenizer.fromBundledVocab(), dir);
    writeJsonAtomic(join(dir, 'preprocessor_config.json'), preprocessorConfig(model.config.vision.imageSize));
  }
  return model;
}
