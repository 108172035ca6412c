// Streams preprocessed image batches [B,3,S,S] from a data set with bounded memory: a pool of worker
// threads decodes and preprocesses the next batches while the caller computes on the current one.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DataError } from '../errors.ts';
import type { PreprocessorConfig } from '../io/preprocess.ts';
import type { ResampleKernels } from '../engine/kernels.ts';
import type { BadItemLog, Dataset, ImageSource } from './dataset.ts';
import { decodeSources, type DecodeReply, type DecodeRequest } from './loader-worker.ts';
import type { Progress } from '../ui/progress.ts';

export interface LoaderOptions {
  /** Images per batch (default 32). */
  batch?: number;
  preprocess: PreprocessorConfig;
  /** Side S of the square model input; every preprocessed image must be [3,S,S]. */
  imageSize: number;
  /** Decode worker threads; 0 decodes in the calling thread. Default: defaultDecodeWorkers(cpus, computeThreads). */
  workers?: number;
  /** Compute threads of the model the batches feed (for the default number of decode workers). */
  computeThreads?: number;
  /** Resize kernels for images decoded in the calling thread (a Runtime's kernels; default the TypeScript twin). */
  kernels?: ResampleKernels;
  /** Batches decoded ahead of the one being consumed (default 2). Memory ≈ (prefetch+1)·batch·3·S·S·4 bytes. */
  prefetch?: number;
  /** Which data set indices to load, in order (default: all). */
  indices?: number[];
  /** Decode failures: thrown as DataError naming the item, or skipped and recorded with --skip-bad. */
  bad?: BadItemLog;
  /** A progress bar to advance (one tick per image), e.g. new Progress(n, 'images'). */
  progress?: Progress;
}

export interface ImageBatch {
  /** Data set indices of the images in this batch (failed ones left out under --skip-bad). */
  indices: number[];
  /** [indices.length, 3, S, S] */
  pixels: Float32Array;
}

/**
 * Decode threads beside the model's compute threads: 1 up to 4 CPUs, then a quarter of them (max 4), and never more
 * than the CPUs the compute threads leave free when some are free. When the compute threads take every CPU (the
 * default: --threads = all CPUs) on a machine of at most 4 CPUs, the answer is 0 and images are decoded in the
 * calling thread between two forwards: a worker could only run by taking a core from a compute thread, and since the
 * GEMM threads wait for each other, that stalls the whole forward for as long as it runs, with the worker's own start
 * (loading its modules, ≈ 0.8 CPU-seconds) on top — measured in docs/scale.md (2 cores, 2 compute threads: 0.88–0.89
 * of the raw forward's images/s with one worker, 0.96–1.00 without). On more CPUs the rule above stands even then:
 * the forward's single-threaded stretches leave cores idle that the workers fill, and a serial decode would weigh
 * more against a faster forward (not measured here: no such machine).
 */
export function defaultDecodeWorkers(cpus = availableParallelism(), computeThreads?: number): number {
  const byCpus = cpus <= 4 ? 1 : Math.min(4, Math.floor(cpus / 4));
  if (computeThreads === undefined) return byCpus;
  const free = cpus - computeThreads;
  if (free >= 1) return Math.min(byCpus, free);
  return cpus <= 4 ? 0 : byCpus;
}

/** A fixed pool of decode workers; each request goes to the least busy worker. */
export class DecodePool {
  private workers: Worker[] = [];
  private busy: number[] = [];
  private waiting = new Map<number, { resolve: (r: DecodeReply) => void; reject: (e: Error) => void; w: number }>();
  private nextId = 0;
  private failed: Error | null = null;

  constructor(n: number) {
    for (let w = 0; w < n; w++) {
      const worker = new Worker(new URL('./loader-worker.mjs', import.meta.url));
      worker.on('message', (r: DecodeReply) => {
        const p = this.waiting.get(r.id);
        if (!p) return;
        this.waiting.delete(r.id);
        this.busy[p.w]--;
        p.resolve(r);
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`decode worker exited with code ${code}`));
      });
      this.workers.push(worker);
      this.busy.push(0);
    }
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  decode(sources: ImageSource[], cfg: PreprocessorConfig, per: number): Promise<DecodeReply> {
    if (this.failed) return Promise.reject(this.failed);
    let w = 0;
    for (let k = 1; k < this.workers.length; k++) if (this.busy[k] < this.busy[w]) w = k;
    const id = this.nextId++;
    this.busy[w]++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, w });
      const req: DecodeRequest = { id, sources, cfg, per };
      // RGB bytes are copied (structured clone) — they may be views into a shared source buffer.
      this.workers[w].postMessage(req);
    });
  }

  get size(): number {
    return this.workers.length;
  }

  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/**
 * Async iterator over preprocessed batches, in data set order. While the caller works on one batch, up to
 * `prefetch` further batches are being decoded by the workers, so decoding overlaps model compute. Items
 * that fail to decode raise a DataError naming the item (file:line and the image path), or with --skip-bad
 * are dropped from their batch and recorded in `bad`.
 */
export async function* imageBatches(ds: Dataset, opts: LoaderOptions): AsyncGenerator<ImageBatch> {
  const B = opts.batch ?? 32;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`imageBatches: batch must be a positive integer, got ${B}`);
  const S = opts.imageSize;
  const per = 3 * S * S;
  const indices = opts.indices ?? Array.from({ length: ds.size }, (_, i) => i);
  const chunks: number[][] = [];
  for (let s = 0; s < indices.length; s += B) chunks.push(indices.slice(s, s + B));
  const nWorkers = Math.max(0, opts.workers ?? defaultDecodeWorkers(availableParallelism(), opts.computeThreads));
  const prefetch = Math.max(1, opts.prefetch ?? 2);
  const pool = nWorkers > 0 && chunks.length > 0 ? new DecodePool(nWorkers) : null;

  // Splits one batch over the workers so that a single batch also decodes in parallel. The first batch is decoded
  // in this thread while the workers start (each needs about half a second to load), when nothing computes yet.
  type Decoded = {
    chunk: number[];
    refs: string[];
    pixels: Float32Array;
    errors: Array<{ k: number; message: string }>;
  };
  const decodeChunk = async (chunk: number[], here = false): Promise<Decoded> => {
    const items = chunk.map((i) => ds.get(i));
    const sources = items.map((it) => it.image);
    const refs = items.map((it) => it.ref);
    if (!pool || here) return { chunk, refs, ...(await decodeSources(sources, opts.preprocess, per, opts.kernels)) };
    const parts = Math.min(pool.size, sources.length);
    const step = Math.ceil(sources.length / parts);
    const replies = await Promise.all(
      Array.from({ length: parts }, (_, p) =>
        pool.decode(sources.slice(p * step, (p + 1) * step), opts.preprocess, per),
      ),
    );
    const pixels = new Float32Array(sources.length * per);
    const errors: Array<{ k: number; message: string }> = [];
    replies.forEach((r, p) => {
      pixels.set(r.pixels, p * step * per);
      for (const e of r.errors) errors.push({ k: e.k + p * step, message: e.message });
    });
    return { chunk, refs, pixels, errors };
  };

  const pending: Array<Promise<Awaited<ReturnType<typeof decodeChunk>>>> = [];
  let next = 0;
  const launch = () => {
    while (pending.length < prefetch && next < chunks.length) {
      const c = chunks[next++]!;
      // the in-thread first batch starts after the worker batches of this launch are posted
      const first = next === 1 && pool !== null && chunks.length > 1;
      const p = first ? Promise.resolve().then(() => decodeChunk(c, true)) : decodeChunk(c);
      p.catch(() => {}); // observed when awaited; avoid an unhandled rejection if the consumer stops early
      pending.push(p);
    }
  };
  try {
    launch();
    while (pending.length > 0) {
      const r = await pending.shift()!;
      launch();
      let { chunk, pixels } = r;
      if (r.errors.length > 0) {
        const failed = new Set<number>();
        for (const e of r.errors) {
          if (!opts.bad) throw new DataError(`${r.refs[e.k]}: ${e.message}`);
          opts.bad.report(r.refs[e.k], e.message); // throws without --skip-bad
          failed.add(e.k);
        }
        const keep = chunk.map((_, k) => k).filter((k) => !failed.has(k));
        const packed = new Float32Array(keep.length * per);
        keep.forEach((k, j) => packed.set(pixels.subarray(k * per, (k + 1) * per), j * per));
        chunk = keep.map((k) => chunk[k]);
        pixels = packed;
      }
      opts.progress?.tick(r.chunk.length);
      yield { indices: chunk, pixels };
    }
  } finally {
    await pool?.close();
  }
}
