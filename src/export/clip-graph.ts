// ONNX graphs of a ClipModel (ai.onnx only, opset ≥ 17): text_model, vision_model and the full CLIP model, in
// fp32, fp16 or q8. Dims: B batch (dynamic), S tokens (dynamic, ≤ maxPositions), C width, NH_l heads, HS head
// size, D_l = NH_l·HS, F_l FFN width, E projection dim, ch channels, P patch, g = imageSize/P, G = g² patches.
import type { ClipModel, LayerWeights, TowerConfig } from '../model/types.ts';
import { A, GraphBuilder } from './graph.ts';
import { OnnxType } from './proto.ts';
import { embeddingGather, linear, type Precision } from './quantize.ts';

export type GraphKind = 'text' | 'vision' | 'full';

export interface ClipGraphOptions {
  precision?: Precision;
  /** Text graphs take `attention_mask` (int64 [B,S], 1 = token, 0 = padding) as a second input (default true). */
  attentionMask?: boolean;
}

/** Additive mask value for removed attention entries; finite so that mask sums never make NaN. */
const NEG = -1e9;

function towerLayerNorm(
  g: GraphBuilder,
  x: string,
  w: Float32Array,
  b: Float32Array,
  eps: number,
  hint: string,
): string {
  const C = w.length;
  return g.node(
    'LayerNormalization',
    [x, g.floatInit(`${hint}.weight`, [C], w), g.floatInit(`${hint}.bias`, [C], b)],
    { axis: A.i(-1), epsilon: A.f(eps) },
    hint,
  );
}

function activation(g: GraphBuilder, cfg: TowerConfig, x: string, hint: string): string {
  if (cfg.act === 'quick_gelu') {
    const s = g.node(
      'Sigmoid',
      [g.node('Mul', [x, g.constF(`${hint}.alpha`, [1.702], [])], {}, `${hint}.ax`)],
      {},
      `${hint}.sig`,
    );
    return g.node('Mul', [x, s], {}, hint);
  }
  // exact gelu: 0.5·x·(1 + erf(x/√2))
  const e = g.node(
    'Erf',
    [g.node('Mul', [x, g.constF(`${hint}.rsqrt2`, [Math.SQRT1_2], [])], {}, `${hint}.xs`)],
    {},
    `${hint}.erf`,
  );
  const one = g.node('Add', [e, g.constF(`${hint}.one`, [1], [])], {}, `${hint}.erf1`);
  return g.node('Mul', [g.node('Mul', [x, g.constF(`${hint}.half`, [0.5], [])], {}, `${hint}.hx`), one], {}, hint);
}

/** One pre-LN block on x [B,S,C]; `mask` is a float32 additive mask broadcastable to [B,NH,S,S], or null. */
function encoderLayer(
  g: GraphBuilder,
  prec: Precision,
  cfg: TowerConfig,
  lw: LayerWeights,
  l: number,
  x: string,
  mask: string | null,
  p: string,
): string {
  const C = cfg.hidden,
    HS = cfg.headDim,
    NH = cfg.heads[l]!,
    D = NH * HS,
    F = cfg.ffn[l]!;
  const fp16 = g.floatType === OnnxType.FLOAT16;
  if (D > 0) {
    const h = towerLayerNorm(g, x, lw.ln1W, lw.ln1B, cfg.eps, `${p}.layer_norm1`);
    const qkv = linear(g, prec, h, lw.qkvW, lw.qkvB, 3 * D, C, `${p}.self_attn.qkv_proj`);
    const r = g.node('Reshape', [qkv, g.constI64(`${p}.qkv_shape`, [0, 0, 3, NH, HS])], {}, `${p}.qkv_5d`);
    const t = g.node('Transpose', [r], { perm: A.ints([2, 0, 3, 1, 4]) }, `${p}.qkv_t`); // [3,B,NH,S,HS]
    const pick = (i: number, name: string) =>
      g.node('Gather', [t, g.constI64(`${p}.idx${i}`, [i], [])], { axis: A.i(0) }, `${p}.${name}`);
    const q = pick(0, 'q'),
      k = pick(1, 'k'),
      v = pick(2, 'v');
    const kT = g.node('Transpose', [k], { perm: A.ints([0, 1, 3, 2]) }, `${p}.kT`);
    let s = g.node('MatMul', [q, kT], {}, `${p}.qk`);
    s = g.node('Mul', [s, g.constF(`${p}.scale`, [1 / Math.sqrt(HS)], [])], {}, `${p}.scores`);
    if (fp16) s = g.node('Cast', [s], { to: A.i(OnnxType.FLOAT) }, `${p}.scores_f32`);
    if (mask) s = g.node('Add', [s, mask], {}, `${p}.scores_masked`);
    let pr = g.node('Softmax', [s], { axis: A.i(-1) }, `${p}.probs`);
    if (fp16) pr = g.node('Cast', [pr], { to: A.i(OnnxType.FLOAT16) }, `${p}.probs_f16`);
    const o = g.node('MatMul', [pr, v], {}, `${p}.ctx`); // [B,NH,S,HS]
    const ot = g.node('Transpose', [o], { perm: A.ints([0, 2, 1, 3]) }, `${p}.ctx_t`);
    const o3 = g.node('Reshape', [ot, g.constI64(`${p}.ctx_shape`, [0, 0, D])], {}, `${p}.ctx_3d`);
    const a = linear(g, prec, o3, lw.outW, lw.outB, C, D, `${p}.self_attn.out_proj`);
    x = g.node('Add', [x, a], {}, `${p}.res1`);
  } else {
    // No heads left: the branch outputs its bias alone (as the engine's forward does).
    x = g.node('Add', [x, g.floatInit(`${p}.self_attn.out_proj.bias`, [C], lw.outB)], {}, `${p}.res1`);
  }
  if (F > 0) {
    const h = towerLayerNorm(g, x, lw.ln2W, lw.ln2B, cfg.eps, `${p}.layer_norm2`);
    const f1 = linear(g, prec, h, lw.fc1W, lw.fc1B, F, C, `${p}.mlp.fc1`);
    const act = activation(g, cfg, f1, `${p}.mlp.act`);
    const f2 = linear(g, prec, act, lw.fc2W, lw.fc2B, C, F, `${p}.mlp.fc2`);
    x = g.node('Add', [x, f2], {}, `${p}.res2`);
  } else {
    x = g.node('Add', [x, g.floatInit(`${p}.mlp.fc2.bias`, [C], lw.fc2B)], {}, `${p}.res2`);
  }
  return x;
}

/** Text tower: ids int64 [B,S] (+ mask int64 [B,S]) → unnormalised text embeds [B,E] in the graph's float type. */
function textTower(g: GraphBuilder, model: ClipModel, prec: Precision, ids: string, attnMask: string | null): string {
  const cfg = model.config.text,
    w = model.weights.text,
    C = cfg.hidden,
    T = cfg.maxPositions;
  const tok = embeddingGather(
    g,
    prec,
    w.tokenEmbedding,
    cfg.vocabSize,
    C,
    ids,
    'text_model.embeddings.token_embedding.weight',
  );
  const S = g.node(
    'Slice',
    [
      g.node('Shape', [ids], {}, 'text.ids_shape'),
      g.constI64('text.one', [1]),
      g.constI64('text.two', [2]),
      g.constI64('text.axis0', [0]),
    ],
    {},
    'text.seq_len',
  ); // [1]
  const pos = g.node(
    'Slice',
    [
      g.floatInit('text_model.embeddings.position_embedding.weight', [T, C], w.positionEmbedding),
      g.constI64('text.zero', [0]),
      S,
      g.constI64('text.axis0b', [0]),
    ],
    {},
    'text.positions',
  );
  let x = g.node('Add', [tok, pos], {}, 'text.embeddings');

  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = NEG;
  const ends = g.node('Concat', [S, S], { axis: A.i(0) }, 'text.mask_ends');
  let mask = g.node(
    'Slice',
    [
      g.init('text.causal_mask', OnnxType.FLOAT, [T, T], causal),
      g.constI64('text.zeros2', [0, 0]),
      ends,
      g.constI64('text.axes01', [0, 1]),
    ],
    {},
    'text.causal',
  ); // [S,S]
  if (attnMask) {
    const am = g.node('Cast', [attnMask], { to: A.i(OnnxType.FLOAT) }, 'text.mask_f');
    const inv = g.node(
      'Sub',
      [g.init('text.mask_one', OnnxType.FLOAT, [], Float32Array.of(1)), am],
      {},
      'text.mask_inv',
    );
    const pad = g.node(
      'Mul',
      [inv, g.init('text.mask_neg', OnnxType.FLOAT, [], Float32Array.of(NEG))],
      {},
      'text.pad_add',
    );
    const pad4 = g.node('Unsqueeze', [pad, g.constI64('text.axes12', [1, 2])], {}, 'text.pad_4d'); // [B,1,1,S]
    mask = g.node('Add', [mask, pad4], {}, 'text.mask'); // [B,1,S,S]
  }
  w.layers.forEach((lw, l) => {
    x = encoderLayer(g, prec, cfg, lw, l, x, mask, `text_model.encoder.layers.${l}`);
  });

  const key = cfg.legacyArgmaxPooling
    ? g.node('Cast', [ids], { to: A.i(OnnxType.INT32) }, 'text.pool_key')
    : g.node(
        'Cast',
        [g.node('Equal', [ids, g.constI64('text.eos', [cfg.eosTokenId], [])], {}, 'text.is_eos')],
        { to: A.i(OnnxType.INT32) },
        'text.pool_key',
      );
  const at = g.node('ArgMax', [key], { axis: A.i(1), keepdims: A.i(0), select_last_index: A.i(0) }, 'text.pool_index'); // [B]
  const at2 = g.node('Unsqueeze', [at, g.constI64('text.axes1', [1])], {}, 'text.pool_index_2d');
  const pooled = g.node('GatherND', [x, at2], { batch_dims: A.i(1) }, 'text.pooled'); // [B,C]
  const ln = towerLayerNorm(g, pooled, w.finalLnW, w.finalLnB, cfg.eps, 'text_model.final_layer_norm');
  return linear(g, prec, ln, w.projection, null, model.config.projectionDim, C, 'text_projection');
}

/** Vision tower: pixels [B,ch,S,S] (graph float type) → unnormalised image embeds [B,E]. */
function visionTower(g: GraphBuilder, model: ClipModel, prec: Precision, px: string): string {
  const cfg = model.config.vision,
    w = model.weights.vision,
    C = cfg.hidden,
    P = cfg.patchSize,
    ch = cfg.channels;
  const G = Math.floor(cfg.imageSize / P) ** 2;
  const conv = g.node(
    'Conv',
    [px, g.floatInit('vision_model.embeddings.patch_embedding.weight', [C, ch, P, P], w.patchEmbedding)],
    { kernel_shape: A.ints([P, P]), strides: A.ints([P, P]) },
    'vision.patch_conv',
  ); // [B,C,g,g]
  const flat = g.node('Reshape', [conv, g.constI64('vision.flat_shape', [0, 0, -1])], {}, 'vision.patch_flat');
  const patches = g.node('Transpose', [flat], { perm: A.ints([0, 2, 1]) }, 'vision.patches'); // [B,G,C]
  const b = g.node(
    'Slice',
    [
      g.node('Shape', [px], {}, 'vision.px_shape'),
      g.constI64('vision.zero', [0]),
      g.constI64('vision.one', [1]),
      g.constI64('vision.axis0', [0]),
    ],
    {},
    'vision.batch',
  );
  const clsShape = g.node('Concat', [b, g.constI64('vision.cls_tail', [1, C])], { axis: A.i(0) }, 'vision.cls_shape');
  const cls = g.node(
    'Expand',
    [g.floatInit('vision_model.embeddings.class_embedding', [1, 1, C], w.classEmbedding), clsShape],
    {},
    'vision.cls',
  );
  let x = g.node('Concat', [cls, patches], { axis: A.i(1) }, 'vision.tokens');
  x = g.node(
    'Add',
    [x, g.floatInit('vision_model.embeddings.position_embedding.weight', [G + 1, C], w.positionEmbedding)],
    {},
    'vision.embeddings',
  );
  x = towerLayerNorm(g, x, w.preLnW, w.preLnB, cfg.eps, 'vision_model.pre_layrnorm');
  w.layers.forEach((lw, l) => {
    x = encoderLayer(g, prec, cfg, lw, l, x, null, `vision_model.encoder.layers.${l}`);
  });
  const clsOut = g.node('Gather', [x, g.constI64('vision.cls_index', [0], [])], { axis: A.i(1) }, 'vision.pooled'); // [B,C]
  const ln = towerLayerNorm(g, clsOut, w.postLnW, w.postLnB, cfg.eps, 'vision_model.post_layernorm');
  return linear(g, prec, ln, w.projection, null, model.config.projectionDim, C, 'visual_projection');
}

function toFloat32(g: GraphBuilder, x: string, hint: string): string {
  return g.floatType === OnnxType.FLOAT16 ? g.node('Cast', [x], { to: A.i(OnnxType.FLOAT) }, hint) : x;
}

function fromFloat32(g: GraphBuilder, x: string, hint: string): string {
  return g.floatType === OnnxType.FLOAT16 ? g.node('Cast', [x], { to: A.i(OnnxType.FLOAT16) }, hint) : x;
}

/** x / ‖x‖ along the last axis (float32). */
function l2normalize(g: GraphBuilder, x: string, hint: string): string {
  const ss = g.node(
    'ReduceSum',
    [g.node('Mul', [x, x], {}, `${hint}.sq`), g.constI64(`${hint}.axes`, [-1])],
    { keepdims: A.i(1) },
    `${hint}.ss`,
  );
  return g.node('Div', [x, g.node('Sqrt', [ss], {}, `${hint}.norm`)], {}, hint);
}

/**
 * The graph of one exported file. text: input_ids (+ attention_mask) → text_embeds [B,E] (unnormalised);
 * vision: pixel_values → image_embeds [B,E] (unnormalised); full: all inputs → logits_per_image [Bi,Bt],
 * logits_per_text [Bt,Bi], text_embeds, image_embeds (normalised), as HF CLIPModel returns them.
 */
export function buildClipGraph(model: ClipModel, kind: GraphKind, opts: ClipGraphOptions = {}): GraphBuilder {
  const prec = opts.precision ?? 'fp32';
  const withMask = opts.attentionMask ?? true;
  const g = new GraphBuilder(
    kind === 'text' ? 'clip_text_model' : kind === 'vision' ? 'clip_vision_model' : 'clip_model',
  );
  if (prec === 'fp16') g.floatType = OnnxType.FLOAT16;
  const E = model.config.projectionDim,
    v = model.config.vision;
  const tb = kind === 'full' ? 'text_batch_size' : 'batch_size',
    ib = kind === 'full' ? 'image_batch_size' : 'batch_size';
  let te: string | null = null,
    ie: string | null = null;
  if (kind !== 'vision') {
    const ids = g.input('input_ids', OnnxType.INT64, [tb, 'sequence_length']);
    const mask =
      withMask || kind === 'full' ? g.input('attention_mask', OnnxType.INT64, [tb, 'sequence_length']) : null;
    te = toFloat32(g, textTower(g, model, prec, ids, mask), 'text.embeds_f32');
  }
  if (kind !== 'text') {
    const px = g.input('pixel_values', OnnxType.FLOAT, [ib, v.channels, v.imageSize, v.imageSize]);
    ie = toFloat32(g, visionTower(g, model, prec, fromFloat32(g, px, 'vision.px_f16')), 'vision.embeds_f32');
  }
  if (kind === 'text') {
    g.node('Identity', [te!], {}, 'text_embeds');
    g.output('text_embeds', OnnxType.FLOAT, [tb, E]);
  } else if (kind === 'vision') {
    g.node('Identity', [ie!], {}, 'image_embeds');
    g.output('image_embeds', OnnxType.FLOAT, [ib, E]);
  } else {
    const tn = l2normalize(g, te!, 'text_embeds');
    const inn = l2normalize(g, ie!, 'image_embeds');
    const sim = g.node(
      'MatMul',
      [tn, g.node('Transpose', [inn], { perm: A.ints([1, 0]) }, 'image_embeds_t')],
      {},
      'cosine',
    );
    const scale = g.init(
      'logit_scale_exp',
      OnnxType.FLOAT,
      [],
      Float32Array.of(Math.exp(model.weights.logitScale[0]!)),
    );
    const lpt = g.node('Mul', [sim, scale], {}, 'logits_per_text');
    g.node('Transpose', [lpt], { perm: A.ints([1, 0]) }, 'logits_per_image');
    g.output('logits_per_image', OnnxType.FLOAT, [ib, tb]);
    g.output('logits_per_text', OnnxType.FLOAT, [tb, ib]);
    g.output('text_embeds', OnnxType.FLOAT, [tb, E]);
    g.output('image_embeds', OnnxType.FLOAT, [ib, E]);
  }
  return g;
}
