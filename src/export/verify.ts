// Checks an exported folder with onnxruntime-node: fp32 files against the engine's forward (max relative
// difference), variants against the fp32 files (row cosines, logit drift, top-1 agreement). Dims: Nt texts
// (padded to S tokens), Ni images [Ni,ch,S,S], E projection dim.
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { clipLogits, encodeImages, encodeTexts, normalizeRows } from '../model/encode.ts';
import { Rng } from '../model/rng.ts';
import type { ClipModel } from '../model/types.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { withClipSession } from './ort-session.ts';
import type { GraphKind } from './clip-graph.ts';
import type { Precision } from './quantize.ts';

/** fp32 files must match the engine within this max relative difference (max|a−b| / max|b| per output). */
export const FP32_TOLERANCE = 1e-4;

export const SAMPLE_TEXTS = [
  'a photo of a cat',
  'a diagram',
  'This is a photo of a red bicycle leaning against a brick wall in the afternoon sun',
  'two dogs playing in the snow',
  'an aerial view of a city at night, with lights',
  'sneaker',
];
export const SAMPLE_IMAGES = 4;

export interface FileCheck {
  kind: GraphKind;
  precision: Precision;
  /** fp32 files: max|onnx − engine| / max|engine| for each output. */
  max_rel_diff_vs_engine?: Record<string, number>;
  /** Variants: cosine of each embedding row to the fp32 file's row (min and mean over the samples). */
  cosine_to_fp32?: Record<string, { min: number; mean: number }>;
  /** Variants of the full model: max |Δ logits_per_image| and share of images whose top text is unchanged. */
  logits_max_abs_diff_vs_fp32?: number;
  top1_agreement_vs_fp32?: number;
  /** fp32 files: within FP32_TOLERANCE. */
  ok?: boolean;
  ms: number;
}

export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`maxRelDiff: lengths ${a.length} and ${b.length}`);
  let d = 0,
    m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m > 0 ? d / m : d;
}

/** Cosine between corresponding rows of a and b ([N,E] each). */
export function rowCosines(a: ArrayLike<number>, b: ArrayLike<number>, E: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * E < a.length; r++) {
    let ab = 0,
      aa = 0,
      bb = 0;
    for (let j = r * E; j < (r + 1) * E; j++) {
      ab += a[j]! * b[j]!;
      aa += a[j]! * a[j]!;
      bb += b[j]! * b[j]!;
    }
    out.push(ab / Math.sqrt(aa * bb || 1));
  }
  return out;
}

export interface SampleInputs {
  ids: number[][];
  B: number;
  S: number;
  /** [B,S] right-padded with EOS. */
  paddedIds: Int32Array;
  mask: Int32Array;
  pixels: Float32Array;
  Ni: number;
}

/** Sample texts (tokenized, padded) and seeded random normal pixels for the model's image size. */
export function sampleInputs(
  model: ClipModel,
  tok: ClipTokenizer,
  texts = SAMPLE_TEXTS,
  Ni = SAMPLE_IMAGES,
): SampleInputs {
  const ids = texts.map((t) => tok.encode(t));
  const batch = tok.encodeBatchPadded(texts, { contextLength: Math.max(...ids.map((r) => r.length)) });
  const v = model.config.vision;
  const rng = new Rng('onnx-export-check');
  const pixels = new Float32Array(Ni * v.channels * v.imageSize * v.imageSize);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.normal();
  return { ids, B: batch.B, S: batch.T, paddedIds: batch.ids, mask: batch.attentionMask, pixels, Ni };
}

type Outputs = Record<string, Float32Array>;

/** Runs an .onnx file with onnxruntime-node on the sample inputs its kind takes; returns its float outputs. */
export async function runOnnxFile(path: string, kind: GraphKind, s: SampleInputs, model: ClipModel): Promise<Outputs> {
  const v = model.config.vision;
  const text = kind !== 'vision' ? { ids: s.paddedIds, mask: s.mask, B: s.B, T: s.S } : undefined;
  const image = kind !== 'text' ? { pixels: s.pixels, N: s.Ni, C: v.channels, S: v.imageSize } : undefined;
  return withClipSession(path, (session) => session.run(text, image));
}

/** The engine's outputs for the sample inputs, under the ONNX output names of each kind. */
export function engineOutputs(rt: Runtime, model: ClipModel, s: SampleInputs): Record<GraphKind, Outputs> {
  const E = model.config.projectionDim,
    Nt = s.ids.length;
  const te = encodeTexts(rt, model, s.ids);
  const ie = encodeImages(rt, model, s.pixels, s.Ni);
  const lpt = clipLogits(rt, te, Nt, ie, s.Ni, E, model.weights.logitScale[0]!);
  const lpi = new Float32Array(s.Ni * Nt);
  for (let t = 0; t < Nt; t++) for (let i = 0; i < s.Ni; i++) lpi[i * Nt + t] = lpt[t * s.Ni + i]!;
  return {
    text: { text_embeds: te },
    vision: { image_embeds: ie },
    full: {
      text_embeds: normalizeRows(rt, te, Nt, E),
      image_embeds: normalizeRows(rt, ie, s.Ni, E),
      logits_per_text: lpt,
      logits_per_image: lpi,
    },
  };
}

function argmaxRows(x: Float32Array, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * cols < x.length; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (x[r * cols + c]! > x[r * cols + best]!) best = c;
    out.push(best);
  }
  return out;
}

/** Runs every exported file (paths relative to `dir`) and compares it as described at the top of this file. */
export async function verifyExport(
  rt: Runtime,
  model: ClipModel,
  tok: ClipTokenizer,
  dir: string,
  files: { path: string; kind: GraphKind; precision: Precision }[],
): Promise<Record<string, FileCheck>> {
  const s = sampleInputs(model, tok);
  const engine = engineOutputs(rt, model, s);
  const E = model.config.projectionDim,
    Nt = s.ids.length;
  const fp32: Partial<Record<GraphKind, Outputs>> = {};
  const checks: Record<string, FileCheck> = {};
  const ordered = [...files].sort((a, b) => Number(a.precision !== 'fp32') - Number(b.precision !== 'fp32'));
  for (const f of ordered) {
    const t0 = performance.now();
    const out = await runOnnxFile(join(dir, f.path), f.kind, s, model);
    const check: FileCheck = { kind: f.kind, precision: f.precision, ms: 0 };
    if (f.precision === 'fp32') {
      fp32[f.kind] = out;
      check.max_rel_diff_vs_engine = {};
      for (const [name, ref] of Object.entries(engine[f.kind]))
        check.max_rel_diff_vs_engine[name] = maxRelDiff(out[name]!, ref);
      check.ok = Object.values(check.max_rel_diff_vs_engine).every((d) => d <= FP32_TOLERANCE);
    } else {
      const base = fp32[f.kind]!;
      check.cosine_to_fp32 = {};
      for (const name of ['text_embeds', 'image_embeds']) {
        if (!(name in out)) continue;
        const c = rowCosines(out[name]!, base[name]!, E);
        check.cosine_to_fp32[name] = { min: Math.min(...c), mean: c.reduce((a, b) => a + b, 0) / c.length };
      }
      if (f.kind === 'full') {
        const a = out.logits_per_image!,
          b = base.logits_per_image!;
        let d = 0;
        for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
        check.logits_max_abs_diff_vs_fp32 = d;
        const ta = argmaxRows(a, Nt),
          tb = argmaxRows(b, Nt);
        check.top1_agreement_vs_fp32 = ta.filter((x, i) => x === tb[i]).length / ta.length;
      }
    }
    check.ms = Math.round(performance.now() - t0);
    checks[f.path] = check;
  }
  return checks;
}
