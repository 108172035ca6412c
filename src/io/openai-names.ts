// OpenAI / OpenCLIP state-dict names → HF names, and geometry inference when no config.json is present.
// Dims: C hidden, A_l = NH_l·HS attention width, F_l FFN width, E projection; OpenAI heads are 64 wide.
import { CheckpointError } from '../errors.ts';
import type { ClipConfig } from '../model/types.ts';
import { parseClipConfig } from '../model/config.ts';
import { fmtShape } from './safetensors.ts';
import type { TensorStore } from './weight-store.ts';
// ---------------------------------------------------------------------------------------------------------------
// Name normalisation: OpenAI / OpenCLIP -> HF, with a transform tag

export type Transform = 'none' | 'transpose' | 'fused';

export interface Canon {
  key: string; // HF name, or `<layer>.self_attn.in_proj.weight|bias` for a fused OpenAI q/k/v
  transform: Transform;
}

const IGNORED = new Set(['input_resolution', 'context_length', 'vocab_size']);

export function isIgnored(name: string): boolean {
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
export function canonical(name: string): Canon {
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

export function isOpenAiNamed(names: string[]): boolean {
  return names.some((n) => n in OPENAI_FIXED || BLOCK_RE.test(n));
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry inference for OpenAI / OpenCLIP checkpoints without config.json (as openai/CLIP build_model does)

export function inferConfigFromOpenAi(store: TensorStore, where: string): ClipConfig {
  const shape = (n: string): number[] => {
    const r = store.refs.get(n);
    if (!r)
      throw new CheckpointError(
        `${store.describe}: cannot infer the model geometry without config.json: tensor '${n}' is missing`,
      );
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
  for (const [w, what] of [
    [vw, 'vision width (visual.conv1.weight)'],
    [tw, 'text width (ln_final.weight)'],
  ] as const) {
    if (w % 64 !== 0) {
      throw new CheckpointError(
        `${store.describe}: cannot infer head counts: the ${what} ${w} is not a multiple of 64 (OpenAI heads are 64 wide); add a config.json`,
      );
    }
  }
  const t = towerLayers('');
  const v = towerLayers('visual.');
  const tower = (x: typeof t, width: number) => ({
    hidden_size: width,
    num_attention_heads: width / 64,
    num_hidden_layers: x.n,
    intermediate_size: x.ffn[0] ?? 4 * width,
    hidden_act: 'quick_gelu', // OpenAI weights; an OpenCLIP gelu model needs a config.json saying so
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
