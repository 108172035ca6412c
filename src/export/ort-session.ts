// The one typed door to onnxruntime-node for our exported CLIP graphs: open a file, feed token ids (+ attention
// mask, only when the graph takes one) and/or pixels, get float outputs by name. Export verification, variant
// evaluation and the deploy benchmark all go through it, so input names, dtypes and shapes live in one place.
// Dims: ids/mask [B,T] (int64 on the wire), pixels [N,C,S,S] float32.
import type { InferenceSession, Tensor } from 'onnxruntime-node';

type Ort = typeof import('onnxruntime-node');

export interface TextInputs {
  /** Token ids row-major [B,T]; Int32Array is widened to int64. */
  ids: Int32Array | BigInt64Array;
  /** 1 for real tokens, 0 for padding [B,T]; omitted = all ones. */
  mask?: Int32Array | BigInt64Array;
  B: number;
  T: number;
}

export interface ImageInputs {
  pixels: Float32Array;
  /** Images, channels, image size. */
  N: number;
  C: number;
  S: number;
}

export interface SessionOptions {
  /** Intra-op threads (default: onnxruntime's own choice). */
  threads?: number;
}

const toI64 = (a: Int32Array | BigInt64Array): BigInt64Array =>
  a instanceof BigInt64Array ? a : BigInt64Array.from(a, (x) => BigInt(x));

export class ClipOrtSession {
  private constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
    readonly path: string,
  ) {}

  static async open(path: string, opts: SessionOptions = {}): Promise<ClipOrtSession> {
    const ort = await import('onnxruntime-node');
    const so: InferenceSession.SessionOptions = opts.threads
      ? {
          intraOpNumThreads: opts.threads,
          interOpNumThreads: 1,
          graphOptimizationLevel: 'all',
          executionMode: 'sequential',
        }
      : {};
    return new ClipOrtSession(ort, await ort.InferenceSession.create(path, so), path);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** The feeds for these inputs, in the names and dtypes the graph declares (prepared once, run many times). */
  feeds(text?: TextInputs, image?: ImageInputs): Record<string, Tensor> {
    const f: Record<string, Tensor> = {};
    const takes = (n: string) => this.session.inputNames.includes(n);
    if (text && takes('input_ids')) {
      f.input_ids = new this.ort.Tensor('int64', toI64(text.ids), [text.B, text.T]);
      if (takes('attention_mask')) {
        const mask = text.mask ? toI64(text.mask) : new BigInt64Array(text.B * text.T).fill(1n);
        f.attention_mask = new this.ort.Tensor('int64', mask, [text.B, text.T]);
      }
    }
    if (image && takes('pixel_values')) {
      f.pixel_values = new this.ort.Tensor('float32', image.pixels, [image.N, image.C, image.S, image.S]);
    }
    for (const n of this.session.inputNames) {
      if (!(n in f)) throw new Error(`${this.path}: the graph needs input '${n}', which was not given`);
    }
    return f;
  }

  /** Runs prepared feeds; returns every output as a Float32Array by name. */
  async runFeeds(feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
    const res = await this.session.run(feeds);
    const out: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(res)) out[k] = t.data as Float32Array;
    return out;
  }

  async run(text?: TextInputs, image?: ImageInputs): Promise<Record<string, Float32Array>> {
    return this.runFeeds(this.feeds(text, image));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Opens `path`, hands the session to `fn`, and releases it whatever happens. */
export async function withClipSession<T>(
  path: string,
  fn: (s: ClipOrtSession) => Promise<T>,
  opts: SessionOptions = {},
): Promise<T> {
  const s = await ClipOrtSession.open(path, opts);
  try {
    return await fn(s);
  } finally {
    await s.release();
  }
}

/** Index of the largest entry of each row of a row-major [rows, cols] matrix. */
export function argmaxRows(x: Float32Array, cols: number): number[] {
  const rows = x.length / cols;
  const out = new Array<number>(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (x[r * cols + c]! > x[r * cols + best]!) best = c;
    out[r] = best;
  }
  return out;
}
