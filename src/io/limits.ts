// Input limits: the largest file of each kind mope-clip reads, the deepest JSON it parses, the image pixel
// budget, and the ranges of numeric flags. Documented in the README ("Limits and exit codes").
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
  /** A data file (csv, tsv, jsonl, coco json), a texts file or a templates file. */
  dataBytes: 512 * MiB,
  /** One line of a text data file (csv/tsv record, jsonl object, texts/templates line). */
  lineBytes: 1 * MiB,
  /** Nesting depth of any JSON file. */
  jsonDepth: 1000,
  /** --threads and MOPE_THREADS. */
  maxThreads: 1024,
  /** eval --workers (image decode threads). */
  maxWorkers: 64,
  /** Memory a single batch may ask for (bench --batch, embed/eval --batch), estimated before allocating. */
  batchBytes: 8 * 1024 * MiB,
} as const;

export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
