// Input limits: the largest file of each kind mope-clip reads, the deepest JSON it parses, the image pixel
// budget, and the ranges of numeric flags. Documented in docs/limits.md ("Limits and exit codes").
import { MAX_THREADS } from '../engine/runtime.ts';
import { MAX_BATCH_BYTES, MAX_DIM, MAX_LAYERS, MAX_PARAMS } from '../model/config.ts';

const MiB = 1024 * 1024;

export const LIMITS = {
  /** config.json, preprocessor_config.json, tokenizer_config.json, model.safetensors.index.json, scores, run state. */
  configBytes: 64 * MiB,
  /** vocab.json, merges.txt, tokenizer.json (the CLIP files are 1–4 MB). */
  tokenizerBytes: 256 * MiB,
  /** One encoded image file. */
  imageBytes: 256 * MiB,
  /** Decoded pixels of one image (width × height), checked from the header before decoding, vector formats included. */
  imagePixels: 89_478_485,
  /**
   * A data file (csv, tsv, jsonl, coco json). These are streamed (src/io/read-stream.ts): memory holds one chunk and
   * the parsed items, never the file; the limit only catches a wrong file (a disk image, a dump) early.
   */
  dataBytes: 16 * 1024 * MiB,
  /** A texts, templates or class-names file, read whole (one text per line; the largest real ones are a few MB). */
  textBytes: 64 * MiB,
  /** One line of a text data file (csv/tsv record, jsonl object, coco images[] entry, texts/templates line). */
  lineBytes: 1 * MiB,
  /** Nesting depth of any JSON file. */
  jsonDepth: 1000,
  /** --threads and MOPE_THREADS. */
  maxThreads: MAX_THREADS,
  /** eval / train / score / compress --workers (image decode threads). */
  maxWorkers: 64,
  /** Activation memory a single batch may ask for (every --batch), estimated from the geometry before allocating. */
  batchBytes: MAX_BATCH_BYTES,
  /** Any --batch, before the memory estimate. */
  maxBatch: 65_536,
  /** Any other integer flag (--seed, --limit, --steps, --save-every, ...): a signed 32-bit integer at most. */
  maxIntFlag: 2 ** 31 - 1,
  /** bench --iters and --runs (timed repetitions). */
  maxIters: 1_000_000,
  /** Width of any model dimension (hidden, FFN, vocabulary, positions, image size) in a config or geometry. */
  maxDim: MAX_DIM,
  /** Layers per tower in a config or geometry. */
  maxLayers: MAX_LAYERS,
  /** Parameters of one model (fp32), checked from the config or geometry before any weight is allocated. */
  maxParams: MAX_PARAMS,
} as const;

export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
