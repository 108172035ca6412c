// Training batches of image-text pairs: a seeded permutation per epoch (or source order with --no-shuffle), one
// caption per image per step (drawn with the step's RNG when an item has several; class prompts for labelled sets),
// right-padded token ids + attention mask, and preprocessed pixels (in-process for in-memory RGB, else the streaming
// loader's worker threads). The position (epoch, index) alone determines what comes next, so a resumed run sees the
// same batches. Dims: B pairs per micro-batch, K micro-batches per step, T tokens (longest caption of the batch), S.
import { ConfigError, DataError } from '../errors.ts';
import type { BadItemLog, Dataset } from '../data/dataset.ts';
import { imageBatches, type ImageBatch } from '../data/loader.ts';
import { decodeSources } from '../data/loader-worker.ts';
import type { ResampleKernels } from '../engine/kernels.ts';
import { fillTemplate, OPENAI_SIMPLE_TEMPLATES } from '../eval/templates.ts';
import type { PreprocessorConfig } from '../io/preprocess.ts';
import { Rng } from '../model/rng.ts';
import type { TrainBatch } from './step.ts';

/** Where the data stream stands: `index` items of epoch `epoch`'s order have been consumed. */
export interface DataPosition {
  epoch: number;
  index: number;
}

export interface BatcherOptions {
  /** B: pairs per micro-batch. */
  batch: number;
  /** K: micro-batches per optimiser step (default 1). */
  accum?: number;
  /** Seeded permutation per epoch (default true); false keeps the source order. */
  shuffle?: boolean;
  /** Seed of the permutations and caption draws. */
  seed: number;
  /** Context length cap (the text tower's max positions). */
  maxTokens: number;
  imageSize: number;
  /** Decode worker threads for image files (default: the loader's default for computeThreads). */
  workers?: number;
  /** The training's compute threads (the loader decodes in this thread when they take every CPU). */
  computeThreads?: number;
  /** Resize kernels for images preprocessed in this thread (a Runtime's kernels; default the TypeScript twin). */
  kernels?: ResampleKernels;
  bad?: BadItemLog;
  /** Prompts for classification sets (default OpenAI's 7 simple templates). */
  templates?: readonly string[];
  /** Data-parallel shard: this rank loads rows [rank·B/size, (rank+1)·B/size) of every micro-batch. */
  shard?: { rank: number; size: number };
}

export interface StepData {
  micro: TrainBatch[];
  /** Position after this step's items. */
  next: DataPosition;
  pairs: number;
}

interface Tokenizer {
  encode(text: string): number[];
  readonly padId: number;
}

/** Order of epoch `epoch`: a Fisher-Yates permutation seeded by (seed, epoch), or the identity. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  return shuffle ? new Rng(`train-order:${seed}:${epoch}`).shuffle(idx) : idx;
}

/** Pads token rows to the longest one: ids (padded with padId) and a 1/0 attention mask, both [B,T]. */
export function padTokens(
  rows: number[][],
  padId: number,
): { ids: Int32Array; attentionMask: Float32Array; T: number } {
  const T = Math.max(2, ...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * T).fill(padId);
  const attentionMask = new Float32Array(rows.length * T);
  rows.forEach((r, b) => {
    ids.set(r, b * T);
    attentionMask.fill(1, b * T, b * T + r.length);
  });
  return { ids, attentionMask, T };
}

/**
 * Step-sized batches from a data set. Each epoch drops its last incomplete step (B·K items), as contrastive
 * batches of one are meaningless. Call close() when done (stops decode workers).
 */
export class PairBatcher {
  readonly B: number;
  readonly K: number;
  readonly stepsPerEpoch: number;
  private readonly shuffle: boolean;
  private readonly inMemory: boolean;
  private readonly templates: readonly string[];
  private order: number[] = [];
  private orderEpoch = -1;
  private stream: { gen: AsyncGenerator<ImageBatch>; epoch: number; index: number } | null = null;

  constructor(
    readonly ds: Dataset,
    readonly tokenizer: Tokenizer,
    readonly preprocess: PreprocessorConfig,
    readonly o: BatcherOptions,
  ) {
    this.B = o.batch;
    this.K = o.accum ?? 1;
    if (!Number.isInteger(this.B) || this.B < 2)
      throw new ConfigError(`--batch must be an integer ≥ 2 for contrastive training, found ${o.batch}.`);
    if (!Number.isInteger(this.K) || this.K < 1)
      throw new ConfigError(`--accum must be a positive integer, found ${o.accum}.`);
    this.stepsPerEpoch = Math.floor(ds.size / (this.B * this.K));
    if (this.stepsPerEpoch < 1) {
      throw new ConfigError(
        `${ds.spec}: ${ds.size} items are fewer than one step needs (--batch ${this.B} × --accum ${this.K} = ${this.B * this.K}); ` +
          'use a smaller batch or more data.',
      );
    }
    const n = o.shard?.size ?? 1;
    if (this.B % n !== 0 || this.B / n < 1) {
      throw new ConfigError(
        `--batch ${this.B} must be a multiple of the ${n} ranks (each rank takes an equal shard of every batch).`,
      );
    }
    this.shuffle = o.shuffle ?? true;
    this.inMemory = ds.size > 0 && ds.get(0).image.kind === 'rgb';
    this.templates = o.templates ?? OPENAI_SIMPLE_TEMPLATES;
  }

  private orderOf(epoch: number): number[] {
    if (this.orderEpoch !== epoch) {
      this.order = epochOrder(this.ds.size, this.o.seed, epoch, this.shuffle);
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /** The caption of item i for step `step` (random among several, the step RNG's draw). */
  private caption(i: number, rng: Rng): string {
    const it = this.ds.get(i);
    if ('captions' in it) {
      if (it.captions.length === 0) throw new DataError(`${it.ref}: item has no caption`);
      return it.captions.length === 1 ? it.captions[0]! : it.captions[rng.int(it.captions.length)]!;
    }
    const ds = this.ds as Extract<Dataset, { kind: 'classification' }>;
    return fillTemplate(this.templates[rng.int(this.templates.length)]!, ds.classnames[it.label]!);
  }

  /** This rank's items of a block of B (all of them without a shard). */
  private mine(block: number[]): number[] {
    const sh = this.o.shard;
    if (!sh || sh.size === 1) return block;
    const b = this.B / sh.size;
    return block.slice(sh.rank * b, (sh.rank + 1) * b);
  }

  /** Pixels of `indices` (this rank's part of the B items at `pos`). */
  private async pixels(indices: number[], pos: DataPosition): Promise<ImageBatch> {
    const per = 3 * this.o.imageSize * this.o.imageSize;
    if (this.inMemory) {
      const r = await decodeSources(
        indices.map((i) => this.ds.get(i).image),
        this.preprocess,
        per,
        this.o.kernels,
      );
      if (r.errors.length === 0) return { indices, pixels: r.pixels };
      const failed = new Set<number>();
      for (const e of r.errors) {
        const ref = this.ds.get(indices[e.k]!).ref;
        if (!this.o.bad) throw new DataError(`${ref}: ${e.message}`);
        this.o.bad.report(ref, e.message);
        failed.add(e.k);
      }
      const keep = indices.map((_, k) => k).filter((k) => !failed.has(k));
      const px = new Float32Array(keep.length * per);
      keep.forEach((k, j) => px.set(r.pixels.subarray(k * per, (k + 1) * per), j * per));
      return { indices: keep.map((k) => indices[k]!), pixels: px };
    }
    // Streaming: one loader per epoch from the current position, decoding ahead of the consumer.
    if (!this.stream || this.stream.epoch !== pos.epoch || this.stream.index !== pos.index) {
      await this.close();
      const order = this.orderOf(pos.epoch);
      const end = this.stepsPerEpoch * this.B * this.K;
      const mine: number[] = [];
      for (let i = pos.index; i < end; i += this.B) mine.push(...this.mine(order.slice(i, i + this.B)));
      const gen = imageBatches(this.ds, {
        batch: this.mine(order.slice(0, this.B)).length,
        preprocess: this.preprocess,
        imageSize: this.o.imageSize,
        workers: this.o.workers,
        computeThreads: this.o.computeThreads,
        kernels: this.o.kernels,
        indices: mine,
        bad: this.o.bad,
      });
      this.stream = { gen, epoch: pos.epoch, index: pos.index };
    }
    const r = await this.stream.gen.next();
    if (r.done) throw new Error('training data stream ended early');
    this.stream.index += this.B;
    return r.value;
  }

  /** The K micro-batches of step `step` (1-based) starting at `pos`. */
  async nextStep(pos: DataPosition, step: number): Promise<StepData> {
    let { epoch, index } = pos;
    if (index + this.B * this.K > this.stepsPerEpoch * this.B * this.K) {
      epoch += 1;
      index = 0;
    }
    const order = this.orderOf(epoch);
    const rng = new Rng(`train-captions:${this.o.seed}:${step}`);
    const micro: TrainBatch[] = [];
    let pairs = 0;
    for (let k = 0; k < this.K; k++) {
      const block = order.slice(index, index + this.B);
      const img = await this.pixels(this.mine(block), { epoch, index });
      index += this.B;
      // captions are drawn for the whole block in order, so a rank's shard gets the captions of the whole batch
      const caption = new Map(block.map((i) => [i, this.caption(i, rng)]));
      if ((this.o.shard?.size ?? 1) > 1) {
        if (img.indices.length === 0) {
          throw new DataError(
            `step ${step}: every image of rank ${this.o.shard!.rank}'s shard was skipped as bad; no data to train on.`,
          );
        }
      } else if (img.indices.length < 2) continue; // all but one undecodable (--skip-bad): nothing to contrast
      const captions = img.indices.map((i) => caption.get(i)!);
      const rows = captions.map((c) => this.tokenizer.encode(c));
      const long = rows.find((r) => r.length > this.o.maxTokens);
      if (long)
        throw new ConfigError(
          `the tokenizer's context length (${long.length} tokens) exceeds the text tower's ${this.o.maxTokens} positions`,
        );
      const { ids, attentionMask, T } = padTokens(rows, this.tokenizer.padId);
      micro.push({ B: img.indices.length, T, ids, attentionMask, pixels: img.pixels });
      pairs += img.indices.length;
    }
    return { micro, next: { epoch, index }, pairs };
  }

  async close(): Promise<void> {
    const s = this.stream;
    this.stream = null;
    if (s) await s.gen.return(undefined);
  }
}
