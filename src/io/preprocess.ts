// CLIP image preprocessing: preprocessor_config.json parse/serialise and HF CLIPImageProcessor's pipeline → Float32Array [3, cropH, cropW].
//
// Pipeline (transformers' CLIPImageProcessor, reproduced exactly for resample 3): convert_rgb →
// resize shortest edge to `size` (long side int(size*long/short), truncated) with PIL's bicubic on
// uint8 → center crop with floor offsets (zero-padded, centred with a ceil split, when smaller) →
// rescale in float64 then cast to float32 → normalise (x - mean)/std in float32 → channels first.

import { existsSync } from 'node:fs';
import { readJsonBounded } from './read-bounded.ts';
import { LIMITS } from './limits.ts';
import { join } from 'node:path';
import { ConfigError, DataError } from '../errors.ts';
import { decodeImage, toRgb } from './image.ts';
import type { ResampleKernels } from '../engine/kernels.ts';
import { PIL_BICUBIC, PIL_BILINEAR, type PilFilter, resizeU8 } from './resize.ts';

export const OPENAI_CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export type ResizeTarget = { shortestEdge: number } | { height: number; width: number };

/** The parts of preprocessor_config.json that change pixel values. */
export interface PreprocessorConfig {
  /** Kept for round trips; the pipeline always yields 3 channels (the model needs RGB), so it is always converted. */
  doConvertRgb: boolean;
  doResize: boolean;
  size: ResizeTarget;
  /** PIL filter code: 3 bicubic (exact), 2 bilinear (exact). */
  resample: PilFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

/** The OpenAI CLIP preprocessing for a vision tower of `imageSize` pixels (224 for ViT-B/32, 336 for the 336 px models). */
export function defaultPreprocessorConfig(imageSize = 224): PreprocessorConfig {
  if (!Number.isInteger(imageSize) || imageSize < 1) {
    throw new ConfigError(`image size must be a positive integer, found ${imageSize}`);
  }
  return {
    doConvertRgb: true,
    doResize: true,
    size: { shortestEdge: imageSize },
    resample: PIL_BICUBIC,
    doCenterCrop: true,
    cropSize: { height: imageSize, width: imageSize },
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: [...OPENAI_CLIP_MEAN],
    imageStd: [...OPENAI_CLIP_STD],
  };
}

// ---------------------------------------------------------------------------------------------
// preprocessor_config.json

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function posInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));

/**
 * Parse the contents of a preprocessor_config.json (already JSON-parsed). Keys that are absent take
 * transformers' CLIPImageProcessor defaults, i.e. those of `defaults` (224 px unless given).
 * `source` names the file in error messages. Throws ConfigError naming the offending field.
 */
export function parsePreprocessorConfig(
  json: unknown,
  source = 'preprocessor_config.json',
  defaults: PreprocessorConfig = defaultPreprocessorConfig(224),
): PreprocessorConfig {
  const bad = (field: string, expected: string, found: unknown): never => {
    throw new ConfigError(`${source}: field "${field}" must be ${expected}, found ${show(found)}`);
  };
  if (!isObj(json)) bad('(top level)', 'a JSON object', json);
  const j = json as Record<string, unknown>;

  const type = j.image_processor_type ?? j.feature_extractor_type;
  if (type !== undefined && (typeof type !== 'string' || !type.startsWith('CLIP'))) {
    const field = j.image_processor_type !== undefined ? 'image_processor_type' : 'feature_extractor_type';
    bad(
      field,
      'a CLIP processor ("CLIPImageProcessor" or "CLIPFeatureExtractor"); other processors resize differently',
      type,
    );
  }

  const flag = (key: string, dflt: boolean): boolean => {
    const v = j[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') bad(key, 'true or false', v);
    return v as boolean;
  };

  let size: ResizeTarget = defaults.size;
  const sz = j.size;
  if (sz !== undefined && sz !== null) {
    const form = 'a positive integer, {"shortest_edge": n} or {"height": h, "width": w}';
    if (posInt(sz)) size = { shortestEdge: sz };
    else if (isObj(sz) && sz.shortest_edge !== undefined) {
      if (!posInt(sz.shortest_edge)) bad('size.shortest_edge', 'a positive integer', sz.shortest_edge);
      if (sz.longest_edge !== undefined && sz.longest_edge !== null) {
        bad('size.longest_edge', 'absent (CLIPImageProcessor has no longest-edge limit)', sz.longest_edge);
      }
      size = { shortestEdge: sz.shortest_edge as number };
    } else if (isObj(sz) && (sz.height !== undefined || sz.width !== undefined)) {
      if (!posInt(sz.height)) bad('size.height', 'a positive integer', sz.height);
      if (!posInt(sz.width)) bad('size.width', 'a positive integer', sz.width);
      size = { height: sz.height as number, width: sz.width as number };
    } else bad('size', form, sz);
  }

  let cropSize = defaults.cropSize;
  const cs = j.crop_size;
  if (cs !== undefined && cs !== null) {
    if (posInt(cs)) cropSize = { height: cs, width: cs };
    else if (isObj(cs)) {
      if (!posInt(cs.height)) bad('crop_size.height', 'a positive integer', cs.height);
      if (!posInt(cs.width)) bad('crop_size.width', 'a positive integer', cs.width);
      cropSize = { height: cs.height as number, width: cs.width as number };
    } else bad('crop_size', 'a positive integer or {"height": h, "width": w}', cs);
  }

  let resample = defaults.resample;
  if (j.resample !== undefined && j.resample !== null) {
    if (j.resample !== PIL_BICUBIC && j.resample !== PIL_BILINEAR) {
      bad('resample', '3 (bicubic) or 2 (bilinear), the PIL filters reproduced exactly', j.resample);
    }
    resample = j.resample as PilFilter;
  }

  let rescaleFactor = defaults.rescaleFactor;
  if (j.rescale_factor !== undefined && j.rescale_factor !== null) {
    const r = j.rescale_factor;
    if (typeof r !== 'number' || !Number.isFinite(r) || r <= 0) bad('rescale_factor', 'a positive number', r);
    rescaleFactor = r as number;
  }

  const triple = (key: string, dflt: [number, number, number], nonzero: boolean): [number, number, number] => {
    const v = j[key];
    if (v === undefined || v === null) return [...dflt];
    if (typeof v === 'number' && Number.isFinite(v) && (!nonzero || v !== 0)) return [v, v, v];
    if (
      !Array.isArray(v) ||
      v.length !== 3 ||
      !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!nonzero || x !== 0))
    ) {
      bad(key, `a list of 3 finite numbers (R, G, B)${nonzero ? ', none zero' : ''}`, v);
    }
    return [(v as number[])[0]!, (v as number[])[1]!, (v as number[])[2]!];
  };

  return {
    doConvertRgb: flag('do_convert_rgb', defaults.doConvertRgb),
    doResize: flag('do_resize', defaults.doResize),
    size,
    resample,
    doCenterCrop: flag('do_center_crop', defaults.doCenterCrop),
    cropSize,
    doRescale: flag('do_rescale', defaults.doRescale),
    rescaleFactor,
    doNormalize: flag('do_normalize', defaults.doNormalize),
    imageMean: triple('image_mean', defaults.imageMean, false),
    imageStd: triple('image_std', defaults.imageStd, true),
  };
}

/**
 * The preprocessor_config.json object for `cfg`, in the dict forms that both Python transformers and
 * transformers.js read the same way (an integer `size` means something else to transformers.js).
 */
export function serializePreprocessorConfig(cfg: PreprocessorConfig): Record<string, unknown> {
  const size =
    'shortestEdge' in cfg.size
      ? { shortest_edge: cfg.size.shortestEdge }
      : { height: cfg.size.height, width: cfg.size.width };
  return {
    crop_size: { height: cfg.cropSize.height, width: cfg.cropSize.width },
    do_center_crop: cfg.doCenterCrop,
    do_convert_rgb: cfg.doConvertRgb,
    do_normalize: cfg.doNormalize,
    do_rescale: cfg.doRescale,
    do_resize: cfg.doResize,
    image_mean: [...cfg.imageMean],
    image_processor_type: 'CLIPImageProcessor',
    image_std: [...cfg.imageStd],
    resample: cfg.resample,
    rescale_factor: cfg.rescaleFactor,
    size,
  };
}

/**
 * Read `dir`/preprocessor_config.json. A missing file is not an error: checkpoints converted from
 * OpenAI/OpenCLIP weights often lack one, and every CLIP uses the OpenAI preprocessing, so we return
 * defaultPreprocessorConfig(imageSizeFallback) (pass the vision config's image_size). Absent keys in
 * a present file take CLIPImageProcessor's own defaults (224 px), as transformers does.
 */
export async function loadPreprocessorConfig(dir: string, imageSizeFallback: number): Promise<PreprocessorConfig> {
  const file = join(dir, 'preprocessor_config.json');
  if (!existsSync(file)) return defaultPreprocessorConfig(imageSizeFallback);
  return parsePreprocessorConfig(readJsonBounded(file, 'preprocessor config', LIMITS.configBytes, ConfigError), file);
}

// ---------------------------------------------------------------------------------------------
// Pipeline

/** Size [height, width] of the image after HF's resize step (before cropping). */
export function resizedSize(cfg: PreprocessorConfig, width: number, height: number): [number, number] {
  if (!cfg.doResize) return [height, width];
  if ('shortestEdge' in cfg.size) {
    const s = cfg.size.shortestEdge;
    // transformers' get_resize_output_image_size: int(size * long / short), truncating.
    if (width <= height) return [Math.trunc((s * height) / width), s];
    return [s, Math.trunc((s * width) / height)];
  }
  return [cfg.size.height, cfg.size.width];
}

/** Shape [3, H, W] of the tensor the pipeline produces for a width×height input. */
export function outputShape(cfg: PreprocessorConfig, width: number, height: number): [number, number, number] {
  if (cfg.doCenterCrop) return [3, cfg.cropSize.height, cfg.cropSize.width];
  const [h, w] = resizedSize(cfg, width, height);
  return [3, h, w];
}

/** The resize step alone on RGB bytes (exposed for tests and for callers that cache resized images). */
export function resizeForConfig(
  rgb: Uint8Array,
  width: number,
  height: number,
  cfg: PreprocessorConfig,
): { width: number; height: number; data: Uint8Array } {
  const [h, w] = resizedSize(cfg, width, height);
  if (h === height && w === width) return { width, height, data: rgb };
  const r = resizeU8({ width, height, channels: 3, data: rgb }, w, h, { filter: cfg.resample });
  return { width: r.width, height: r.height, data: r.data };
}

/**
 * Run the pipeline on interleaved 8-bit RGB pixels (width*height*3 bytes), e.g. arrays from a data
 * set that never were image files. Writes channels-first float32 into `out` when given (it must hold
 * exactly outputShape() elements, e.g. one slot of a batch via subarray) and returns it.
 */
export function preprocessRgb(
  rgb: Uint8Array,
  width: number,
  height: number,
  cfg: PreprocessorConfig,
  out?: Float32Array,
  kernels?: ResampleKernels,
): Float32Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DataError(`preprocess: image size must be positive integers, found ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new DataError(
      `preprocess: expected ${width}x${height}x3 = ${width * height * 3} RGB bytes, found ${rgb.length}`,
    );
  }
  const [rh, rw] = resizedSize(cfg, width, height);
  const [, oh, ow] = outputShape(cfg, width, height);
  const plane = oh * ow;
  if (out === undefined) out = new Float32Array(3 * plane);
  else if (out.length !== 3 * plane) {
    throw new DataError(`preprocess: output buffer holds ${out.length} floats, expected 3x${oh}x${ow} = ${3 * plane}`);
  }

  // Crop window in resized coordinates (floor offsets); where it falls outside, HF zero-pads,
  // which is the same as reading 0 there: floor((H-h)/2) = -ceil((h-H)/2).
  const top = Math.floor((rh - oh) / 2);
  const left = Math.floor((rw - ow) / 2);
  // Only the visible part of the window is resampled (identical bytes, a quarter less work at 4:3).
  const x0 = Math.max(0, left),
    x1 = Math.min(rw, left + ow);
  const y0 = Math.max(0, top),
    y1 = Math.min(rh, top + oh);
  const vis =
    rh === height && rw === width && x0 === 0 && y0 === 0 && x1 === rw && y1 === rh
      ? { data: rgb }
      : resizeU8({ width, height, channels: 3, data: rgb }, rw, rh, {
          filter: cfg.resample,
          region: [x0, y0, x1 - x0, y1 - y0],
          kernels,
        });

  // Per-channel lookup of the final float for each byte value: the arithmetic is exactly HF's
  // (float64 rescale cast to float32, then float32 subtract and divide), done once per level.
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(cfg.imageMean[c]!);
    const s = Math.fround(cfg.imageStd[c]!);
    for (let v = 0; v < 256; v++) {
      let x = cfg.doRescale ? Math.fround(v * cfg.rescaleFactor) : v;
      if (cfg.doNormalize) x = Math.fround(Math.fround(x - m) / s);
      lut[c * 256 + v] = x;
    }
  }
  const src = vis.data;
  const vw = x1 - x0;
  for (let y = 0; y < oh; y++) {
    const sy = y + top;
    const rowOut = y * ow;
    if (sy < y0 || sy >= y1) {
      for (let c = 0; c < 3; c++) out.fill(lut[c * 256]!, c * plane + rowOut, c * plane + rowOut + ow);
      continue;
    }
    const rowIn = (sy - y0) * vw - x0;
    for (let x = 0; x < ow; x++) {
      const sx = x + left;
      const o = rowOut + x;
      if (sx < x0 || sx >= x1) {
        out[o] = lut[0]!;
        out[plane + o] = lut[256]!;
        out[2 * plane + o] = lut[512]!;
        continue;
      }
      const p = (rowIn + sx) * 3;
      out[o] = lut[src[p]!]!;
      out[plane + o] = lut[256 + src[p + 1]!]!;
      out[2 * plane + o] = lut[512 + src[p + 2]!]!;
    }
  }
  return out;
}

/** Decode an image file (or encoded bytes) and run the pipeline: Float32Array [3, cropH, cropW]. */
export async function preprocessImage(
  input: string | Uint8Array,
  cfg: PreprocessorConfig,
  out?: Float32Array,
  kernels?: ResampleKernels,
): Promise<Float32Array> {
  const img = await decodeImage(input);
  return preprocessRgb(img.data, img.width, img.height, cfg, out, kernels);
}

/** Interleaved pixels with 1-4 channels (grey, grey+alpha, RGB, RGBA) → pipeline, converting like PIL's convert('RGB'). */
export function preprocessPixels(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  cfg: PreprocessorConfig,
  out?: Float32Array,
): Float32Array {
  return preprocessRgb(channels === 3 ? data : toRgb(data, width, height, channels), width, height, cfg, out);
}
