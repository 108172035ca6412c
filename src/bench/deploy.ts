// `mope-clip bench --mode deploy`: exports a model (and a --vs model) to temporary ONNX folders (fp32 + q8), then
// measures onnxruntime-node latency (batch 1, median) and throughput (batch B) of the vision and text graphs, next to
// parameters, GFLOPs, file sizes and the engine's own speed; with --vs, measured speed-ups over the FLOP ratio.
// Dims: B batch, T = 77 tokens, images [B, ch, S, S].
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { loadCheckpoint, countParameters } from '../io/checkpoint.ts';
import { exportModel } from '../export/export.ts';
import { gflops, imageMacs, textMacs } from '../model/flops.ts';
import type { ClipModel } from '../model/types.ts';
import { Rng } from '../model/rng.ts';
import { benchInfer } from './infer.ts';
import { ClipOrtSession, type ImageInputs, type TextInputs } from '../export/ort-session.ts';
import type { Tensor } from 'onnxruntime-node';

export type Tower = 'vision' | 'text';
export type OrtPrecision = 'fp32' | 'q8';
export const TOWERS: readonly Tower[] = ['vision', 'text'];
export const PRECISIONS: readonly OrtPrecision[] = ['fp32', 'q8'];

export interface OrtTiming {
  /** Median of `runs` batch-1 calls, milliseconds. */
  latency_ms: number;
  /** Items per second at batch B (best of `iters` calls). */
  throughput_per_s: number;
}

export interface ModelBench {
  dir: string;
  /** Tokens per text in the text timings (the model's max positions, 77 for CLIP). */
  text_tokens: number;
  params: { total: number; vision: number; text: number };
  /** GFLOPs (2·MACs) of one image / one 77-token text. */
  gflops: { vision: number; text: number };
  /** Size of each exported graph (with external data), MB = 1e6 bytes. */
  file_mb: Record<Tower, Record<OrtPrecision, number>>;
  onnxruntime: Record<Tower, Record<OrtPrecision, OrtTiming>>;
  /** The engine's own fp32 forward at batch B (benchInfer). */
  engine: { images_per_s: number; texts_per_s: number };
}

export interface SpeedupEntry {
  latency_speedup: number;
  throughput_speedup: number;
  /** latency_speedup / flop_ratio: 1 means the FLOP cut became speed in full. */
  latency_speedup_over_flop_ratio: number;
  throughput_speedup_over_flop_ratio: number;
}

export interface Comparison {
  /** Model GFLOPs / vs GFLOPs, per tower. */
  flop_ratio: Record<Tower, number>;
  param_ratio: number;
  onnxruntime: Record<Tower, Record<OrtPrecision, SpeedupEntry>>;
  engine: Record<Tower, { speedup: number; speedup_over_flop_ratio: number }>;
}

export interface DeployBench {
  mode: 'deploy';
  batch: number;
  threads: number;
  runs: number;
  iters: number;
  text_tokens: number;
  model: ModelBench;
  vs?: ModelBench;
  comparison?: Comparison;
}

export interface DeployBenchOptions {
  model: string;
  vs?: string;
  /** Throughput batch (default 32). */
  batch?: number;
  /** onnxruntime intraOpNumThreads; the engine uses rt.threads. */
  threads: number;
  /** Batch-1 calls whose median is the latency (default 10). */
  runs?: number;
  /** Batch-B calls whose best is the throughput (default 2). */
  iters?: number;
  rt: Runtime;
  log?: (msg: string) => void;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function towerParams(tower: object): number {
  let n = 0;
  for (const v of Object.values(tower)) {
    if (v instanceof Float32Array) n += v.length;
    else if (Array.isArray(v)) for (const layer of v) n += towerParams(layer as object);
  }
  return n;
}

function fileMb(dir: string, rel: string): number {
  const p = join(dir, rel);
  const bytes = statSync(p).size + (existsSync(p + '_data') ? statSync(p + '_data').size : 0);
  return bytes / 1e6;
}

/** Random inputs of one tower for `n` items: pixels N(0,1), or 77-token rows BOS … EOS with a full mask. */
function towerInputs(
  model: ClipModel,
  tower: Tower,
  n: number,
  seed: number,
): { text?: TextInputs; image?: ImageInputs } {
  const rng = new Rng(seed);
  const c = model.config;
  if (tower === 'vision') {
    const S = c.vision.imageSize,
      C = c.vision.channels;
    const pixels = new Float32Array(n * C * S * S);
    for (let i = 0; i < pixels.length; i++) pixels[i] = rng.normal();
    return { image: { pixels, N: n, C, S } };
  }
  const T = c.text.maxPositions;
  const ids = new Int32Array(n * T);
  for (let b = 0; b < n; b++) {
    ids[b * T] = c.text.bosTokenId % c.text.vocabSize;
    for (let t = 1; t < T - 1; t++) ids[b * T + t] = Math.floor(rng.uniform() * Math.min(49406, c.text.vocabSize));
    ids[b * T + T - 1] = c.text.eosTokenId;
  }
  return { text: { ids, B: n, T } };
}

/**
 * Times one graph file per model, the models taking turns run by run (A B A B …), so load from other processes
 * falls on all of them alike. Latency: median of `runs` batch-1 calls; throughput: best of `iters` batch-B calls.
 */
async function timeOrt(
  paths: string[],
  models: ClipModel[],
  tower: Tower,
  o: { batch: number; threads: number; runs: number; iters: number },
): Promise<OrtTiming[]> {
  const sessions: ClipOrtSession[] = [];
  try {
    for (const path of paths) sessions.push(await ClipOrtSession.open(path, { threads: o.threads }));
    const feedsOf = (n: number, seed: number) =>
      models.map((m, i) => {
        const x = towerInputs(m, tower, n, seed);
        return sessions[i]!.feeds(x.text, x.image);
      });
    const timed = async (i: number, feeds: Record<string, Tensor>): Promise<number> => {
      const t0 = process.hrtime.bigint();
      await sessions[i]!.runFeeds(feeds);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const one = feedsOf(1, 1);
    const lat = models.map(() => [] as number[]);
    for (let i = 0; i < models.length; i++) for (let w = 0; w < 2; w++) await timed(i, one[i]!);
    for (let r = 0; r < o.runs; r++) for (let i = 0; i < models.length; i++) lat[i]!.push(await timed(i, one[i]!));
    const many = feedsOf(o.batch, 2);
    const best = models.map(() => Infinity);
    for (let i = 0; i < models.length; i++) await timed(i, many[i]!);
    for (let r = 0; r < o.iters; r++)
      for (let i = 0; i < models.length; i++) best[i] = Math.min(best[i]!, await timed(i, many[i]!));
    return models.map((_, i) => ({ latency_ms: median(lat[i]!), throughput_per_s: (1000 * o.batch) / best[i]! }));
  } finally {
    for (const s of sessions) await s.release();
  }
}

const GRAPH: Record<Tower, Record<OrtPrecision, string>> = {
  vision: { fp32: 'onnx/vision_model.onnx', q8: 'onnx/vision_model_quantized.onnx' },
  text: { fp32: 'onnx/text_model.onnx', q8: 'onnx/text_model_quantized.onnx' },
};

type Opts = Required<Omit<DeployBenchOptions, 'vs' | 'model'>>;

/** A loaded checkpoint and its temporary export (fp32 + q8). */
interface Prepared {
  dir: string;
  model: ClipModel;
  out: string;
}

async function prepare(dir: string, tmp: string, name: string, log: (m: string) => void): Promise<Prepared> {
  const model = loadCheckpoint(dir);
  log(`bench deploy: exporting ${dir} (fp32 + q8) to a temporary folder`);
  const out = join(tmp, name);
  await exportModel(dir, out, { quantize: ['q8'] });
  return { dir, model, out };
}

/**
 * Times every prepared model. Models take turns run by run within each (tower, precision) step, so the machine's
 * load (other processes, thermal drift) affects dense and pruned alike rather than whichever ran second.
 */
async function measure(ps: Prepared[], opts: Opts): Promise<ModelBench[]> {
  const res: ModelBench[] = ps.map(({ dir, model, out }) => ({
    dir: resolve(dir),
    text_tokens: model.config.text.maxPositions,
    params: {
      total: countParameters(model),
      vision: towerParams(model.weights.vision),
      text: towerParams(model.weights.text),
    },
    gflops: { vision: gflops(imageMacs(model.config)), text: gflops(textMacs(model.config)) },
    file_mb: {
      vision: { fp32: fileMb(out, GRAPH.vision.fp32), q8: fileMb(out, GRAPH.vision.q8) },
      text: { fp32: fileMb(out, GRAPH.text.fp32), q8: fileMb(out, GRAPH.text.q8) },
    },
    onnxruntime: { vision: {}, text: {} } as ModelBench['onnxruntime'],
    engine: { images_per_s: 0, texts_per_s: 0 },
  }));
  for (const tower of TOWERS) {
    for (const p of PRECISIONS) {
      opts.log(`bench deploy: onnxruntime ${tower} ${p}`);
      const t = await timeOrt(
        ps.map((x) => join(x.out, GRAPH[tower][p])),
        ps.map((x) => x.model),
        tower,
        opts,
      );
      t.forEach((timing, i) => {
        res[i]!.onnxruntime[tower][p] = timing;
      });
    }
  }
  // The engine: best of `iters` rounds, the models taking turns round by round (each round warms up, then times one call).
  opts.log('bench deploy: engine forward');
  for (let r = 0; r < opts.iters; r++) {
    for (let i = 0; i < ps.length; i++) {
      const e = benchInfer(opts.rt, ps[i]!.model, opts.batch, 1);
      const best = res[i]!.engine;
      res[i]!.engine = {
        images_per_s: Math.max(best.images_per_s, e.images_per_s),
        texts_per_s: Math.max(best.texts_per_s, e.texts_per_s),
      };
    }
  }
  return res;
}

/** Speed-ups of `b` over `a` (a = the dense model, b = the --vs model) and their ratio to the FLOP cut. */
export function compareBenches(a: ModelBench, b: ModelBench): Comparison {
  const flop_ratio = { vision: a.gflops.vision / b.gflops.vision, text: a.gflops.text / b.gflops.text };
  const onnxruntime = {} as Comparison['onnxruntime'];
  for (const t of TOWERS) {
    onnxruntime[t] = {} as Record<OrtPrecision, SpeedupEntry>;
    for (const p of PRECISIONS) {
      const x = a.onnxruntime[t][p],
        y = b.onnxruntime[t][p];
      const latency_speedup = x.latency_ms / y.latency_ms;
      const throughput_speedup = y.throughput_per_s / x.throughput_per_s;
      onnxruntime[t][p] = {
        latency_speedup,
        throughput_speedup,
        latency_speedup_over_flop_ratio: latency_speedup / flop_ratio[t],
        throughput_speedup_over_flop_ratio: throughput_speedup / flop_ratio[t],
      };
    }
  }
  const ev = b.engine.images_per_s / a.engine.images_per_s,
    et = b.engine.texts_per_s / a.engine.texts_per_s;
  return {
    flop_ratio,
    param_ratio: a.params.total / b.params.total,
    onnxruntime,
    engine: {
      vision: { speedup: ev, speedup_over_flop_ratio: ev / flop_ratio.vision },
      text: { speedup: et, speedup_over_flop_ratio: et / flop_ratio.text },
    },
  };
}

export async function benchDeploy(opts: DeployBenchOptions): Promise<DeployBench> {
  const o: Opts = {
    batch: opts.batch ?? 32,
    threads: opts.threads,
    runs: opts.runs ?? 10,
    iters: opts.iters ?? 2,
    rt: opts.rt,
    log: opts.log ?? (() => {}),
  };
  const tmp = mkdtempSync(join(tmpdir(), 'mope-deploy-'));
  try {
    const ps = [await prepare(opts.model, tmp, 'model', o.log)];
    if (opts.vs) ps.push(await prepare(opts.vs, tmp, 'vs', o.log));
    const [model, vs] = await measure(ps, o);
    const out: DeployBench = {
      mode: 'deploy',
      batch: o.batch,
      threads: o.threads,
      runs: o.runs,
      iters: o.iters,
      text_tokens: model!.text_tokens,
      model: model!,
    };
    if (vs) {
      out.vs = vs;
      out.comparison = compareBenches(model!, vs);
    }
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const f = (x: number, d = 2): string => x.toFixed(d);

/** A plain-text table of the result (one row per tower × precision), then the FLOP-ratio lines. */
export function formatDeployBench(r: DeployBench): string {
  const lines: string[] = [];
  const names = r.vs ? (['model', 'vs'] as const) : (['model'] as const);
  lines.push(
    `onnxruntime-node, ${r.threads} threads; latency = median of ${r.runs} batch-1 runs; throughput at batch ${r.batch}; texts of ${r.text_tokens} tokens`,
  );
  for (const n of names) {
    const m = r[n]!;
    lines.push(
      `${n}: ${m.dir}: ${(m.params.total / 1e6).toFixed(1)} M params (vision ${(m.params.vision / 1e6).toFixed(1)} M, text ${(m.params.text / 1e6).toFixed(1)} M), ` +
        `${m.gflops.vision.toPrecision(3)} GFLOPs/image, ${m.gflops.text.toPrecision(3)} GFLOPs/text; engine ${f(m.engine.images_per_s)} images/s, ${f(m.engine.texts_per_s)} texts/s`,
    );
  }
  lines.push(
    '| tower | precision | ' +
      names.map((n) => `${n} MB | ${n} ms (b=1) | ${n} items/s (b=${r.batch})`).join(' | ') +
      (r.vs ? ' | speed-up b=1 | speed-up b=' + r.batch + ' | FLOP ratio |' : ' |'),
  );
  for (const t of TOWERS) {
    for (const p of PRECISIONS) {
      const cells = names.map((n) => {
        const m = r[n]!;
        return `${f(m.file_mb[t][p], 1)} | ${f(m.onnxruntime[t][p].latency_ms)} | ${f(m.onnxruntime[t][p].throughput_per_s, 1)}`;
      });
      let row = `| ${t} | ${p} | ${cells.join(' | ')}`;
      if (r.comparison) {
        const c = r.comparison.onnxruntime[t][p];
        row += ` | ${f(c.latency_speedup)}× | ${f(c.throughput_speedup)}× | ${f(r.comparison.flop_ratio[t])}×`;
      }
      lines.push(row + ' |');
    }
  }
  if (r.comparison) {
    const c = r.comparison;
    for (const t of TOWERS) {
      const parts = PRECISIONS.map(
        (p) =>
          `${p} ${f(c.onnxruntime[t][p].latency_speedup_over_flop_ratio)} (b=1) / ${f(c.onnxruntime[t][p].throughput_speedup_over_flop_ratio)} (b=${r.batch})`,
      );
      lines.push(
        `${t}: measured speed-up ÷ FLOP ratio (${f(c.flop_ratio[t])}×): onnxruntime ${parts.join(', ')}; engine ${f(c.engine[t].speedup)}× → ${f(c.engine[t].speedup_over_flop_ratio)}`,
      );
    }
  }
  return lines.join('\n') + '\n';
}
