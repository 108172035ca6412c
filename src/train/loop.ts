// The training loop of `train` and `distill` (and of compress / the demo as a library call): batches from a data set,
// accumulated steps (contrastive, or distillation against a frozen teacher), periodic eval into OUT/metrics.jsonl,
// a progress line on the logger, atomic checkpoints every N steps and at the end, exact --resume, and a stop naming
// the step on a non-finite loss (the last good checkpoint is kept). Dims: B pairs per micro-batch, K micro-batches.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { CheckpointError, ConfigError } from '../errors.ts';
import type { BadItemLog, Dataset } from '../data/dataset.ts';
import { DEFAULT_LOSS_WEIGHTS, type LossParts, type LossWeights } from '../distill/losses.ts';
import type { EvalModel } from '../eval/embed-data.ts';
import { evalRetrieval, type RetrievalResult } from '../eval/retrieval.ts';
import { evalZeroshot, type ZeroshotResult } from '../eval/zeroshot.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { checkBatchMemory } from '../model/config.ts';
import { toStateDict } from '../model/state-dict.ts';
import { createGrads, paramList, zeroGrads } from '../model/grads.ts';
import type { ClipModel, TowerMasks } from '../model/types.ts';
import type { Tower } from '../model/workspace.ts';
import { DEFAULT_OPTIM, Optimizer, type OptimConfig } from './optim.ts';
import { NonFiniteLossError, TrainStep, accumulateStep } from './step.ts';
import { PairBatcher, type DataPosition } from './data.ts';
import { GradSync } from '../parallel/grads.ts';
import { SINGLE_WORLD, type World } from '../parallel/world.ts';
import type { TeacherCache } from './teacher-cache.ts';
import {
  CHECKPOINT_DIR,
  findTrainCheckpoint,
  loadOptimizerState,
  readTrainState,
  writeModelFolder,
  writeTrainCheckpoint,
  TRAIN_STATE_FORMAT,
  type ModelFiles,
  type TrainState,
  type WriteHook,
} from './checkpoint.ts';

export const METRICS_FILE = 'metrics.jsonl';

export interface EvalSpec {
  data: Dataset;
  /** Evaluate every N steps (0 = only at the end). */
  every: number;
  bad?: BadItemLog;
  batch?: number;
  templates?: readonly string[];
}

export interface TrainLoopOptions {
  /** The model being trained (its weights are updated in place) with its tokenizer and preprocessing. */
  student: ModelFiles;
  /** Frozen teacher: distillation when set. */
  teacher?: ClipModel | null;
  /** Per-item teacher outputs reused across epochs, stages and runs (absent = the teacher runs every step). */
  teacherCache?: TeacherCache | null;
  data: Dataset;
  bad?: BadItemLog;
  /** Optimiser steps (or give epochs). */
  steps?: number;
  epochs?: number;
  /** B: pairs per micro-batch. */
  batch: number;
  /** K: micro-batches per optimiser step (default 1). */
  accum?: number;
  optim?: Partial<OptimConfig>;
  loss?: Partial<LossWeights>;
  freeze?: Partial<Record<Tower, boolean>>;
  freezeLogitScale?: boolean;
  masks?: Partial<Record<Tower, TowerMasks>>;
  /** Seeded shuffle per epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  eval?: EvalSpec | null;
  /** Run folder: checkpoint/, metrics.jsonl, and the final model files. */
  out: string;
  /** Checkpoint every N steps (0 = only at the end). */
  saveEvery?: number;
  /** Continue from OUT's checkpoint (starts fresh when there is none). */
  resume?: boolean;
  /** Extra settings recorded in train_state.json (the loop's own settings, checked on --resume, are added to them). */
  flags?: Record<string, unknown>;
  /** Decode worker threads for image files. */
  workers?: number;
  /** Progress line every N steps (default 10; the first and last step always). */
  logEvery?: number;
  onStep?: (r: StepRecord) => void;
  /** Simulates a kill: return right after this step (and its checkpoint, if one was due), skipping the final save. */
  stopAfter?: number;
  /** Called after each checkpoint file is written (fault injection in tests). */
  writeHook?: WriteHook;
  /**
   * Data-parallel group (default: this process alone). With N ranks every micro-batch of `batch` pairs is split
   * into N equal shards, the loss is that of the whole batch, gradients are summed over ranks before the same
   * optimiser step everywhere, and rank 0 alone writes checkpoints, metrics and the model.
   */
  world?: World;
}

export interface StepRecord {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: LossParts;
  lr: number;
  gradNorm: number;
  pairs: number;
  pairsPerSecond: number;
}

export interface EvalRecord {
  step: number;
  task: 'zeroshot' | 'retrieval';
  /** Zero-shot top-1 or retrieval mean recall@1. */
  score: number;
  result: ZeroshotResult | RetrievalResult;
}

export interface TrainResult {
  out: string;
  checkpoint: string | null;
  startStep: number;
  steps: number;
  totalSteps: number;
  epoch: number;
  /** Loss of the first step run in this call and of the last one. */
  firstLoss: LossParts | null;
  lastLoss: LossParts | null;
  /** Mean total loss over the last min(10, steps) steps of this call. */
  recentLoss: number | null;
  evals: EvalRecord[];
  finalEval: EvalRecord | null;
  seconds: number;
  pairsPerSecond: number;
  /** True when stopAfter ended the run early. */
  stopped: boolean;
  /** Ranks of the data-parallel group, and the pairs of each rank's shard of a micro-batch. */
  worldSize: number;
  rankBatch: number;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function copyWeights(dst: ClipModel, src: ClipModel, where: string): void {
  const a = toStateDict(dst),
    b = toStateDict(src);
  for (const [name, t] of a) {
    const s = b.get(name);
    if (!s || s.data.length !== t.data.length)
      throw new CheckpointError(
        `${where}: tensor '${name}' missing or of another shape; the checkpoint is not of this model.`,
      );
    t.data.set(s.data);
  }
}

async function runEvalOn(
  rt: Runtime,
  m: ModelFiles,
  spec: EvalSpec,
  step: number,
  workers?: number,
): Promise<EvalRecord> {
  const em: EvalModel = { rt, model: m.model, tokenizer: m.tokenizer, preprocess: m.preprocess };
  const o = { batch: spec.batch, workers, bad: spec.bad, progress: false };
  if (spec.data.kind === 'classification') {
    const r = await evalZeroshot(em, spec.data, { ...o, templates: spec.templates });
    return { step, task: 'zeroshot', score: r.acc1, result: r };
  }
  const r = await evalRetrieval(em, spec.data, o);
  return { step, task: 'retrieval', score: r['mean_recall@1'], result: r };
}

/** Keeps the metrics lines of steps ≤ step (a resumed run redoes the later ones). */
function trimMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step?: number }).step! <= step;
      } catch {
        return false;
      }
    });
  writeFileSync(path, keep.map((l) => l + '\n').join(''));
}

/** Trains opts.student in place; see TrainLoopOptions. Returns the run's figures. */
export async function trainLoop(rt: Runtime, opts: TrainLoopOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const { student, out } = opts;
  const model = student.model,
    cfg = model.config;
  checkBatchMemory(cfg, opts.batch, '--batch', true);
  const seed = opts.seed ?? rt.seed;
  const world = opts.world ?? SINGLE_WORLD,
    lead = world.rank === 0;
  const batcher = new PairBatcher(opts.data, student.tokenizer, student.preprocess, {
    batch: opts.batch,
    accum: opts.accum,
    shuffle: opts.shuffle,
    seed,
    maxTokens: cfg.text.maxPositions,
    imageSize: cfg.vision.imageSize,
    workers: opts.workers,
    computeThreads: rt.threads,
    kernels: rt.kernels,
    bad: opts.bad,
    shard: world.size > 1 ? { rank: world.rank, size: world.size } : undefined,
  });
  if ((opts.steps === undefined) === (opts.epochs === undefined))
    throw new ConfigError('give exactly one of --steps N or --epochs N.');
  const total = opts.steps ?? opts.epochs! * batcher.stepsPerEpoch;
  if (!Number.isInteger(total) || total < 1)
    throw new ConfigError(`the run must have at least one step, found ${total}.`);
  const saveEvery = opts.saveEvery ?? 0,
    logEvery = opts.logEvery ?? 10;
  // What decides the data order, the step and the optimiser: must not change across --resume.
  const settings: Record<string, unknown> = {
    data: opts.data.spec,
    items: opts.data.size,
    batch: batcher.B,
    accum: batcher.K,
    seed,
    shuffle: opts.shuffle ?? true,
    optim: { ...DEFAULT_OPTIM, ...opts.optim, totalSteps: undefined },
    distill: Boolean(opts.teacher),
    loss: opts.teacher ? { ...DEFAULT_LOSS_WEIGHTS, ...opts.loss } : null,
    freeze: opts.freeze ?? {},
    freeze_logit_scale: Boolean(opts.freezeLogitScale),
  };
  const flags: Record<string, unknown> = { ...opts.flags, steps: total, settings };

  const grads = createGrads(cfg);
  const setup = {
    student: model,
    grads,
    teacher: opts.teacher ?? null,
    freeze: opts.freeze,
    freezeLogitScale: opts.freezeLogitScale,
    masks: opts.masks,
    loss: opts.loss,
    world,
    teacherCache: opts.teacherCache,
  };
  const step = new TrainStep(rt, setup);
  const params = paramList(model, grads, { freeze: opts.freeze, freezeLogitScale: opts.freezeLogitScale });
  const opt = new Optimizer(rt, params, { ...opts.optim, totalSteps: total });
  const sync = world.size > 1 ? new GradSync(world, params) : null;

  // Resume or start fresh.
  let pos: DataPosition = { epoch: 0, index: 0 };
  let lastSaved: number | null = null;
  const metricsPath = join(out, METRICS_FILE);
  const found = findTrainCheckpoint(out);
  if (found && !opts.resume) {
    throw new ConfigError(
      `${out} already holds a training checkpoint (step ${readTrainState(found).step}); pass --resume to continue it, or choose another --out.`,
    );
  }
  if (found) {
    const st = readTrainState(found);
    const was = (st.flags.settings ?? {}) as Record<string, unknown>;
    const diff = Object.keys(settings).filter((k) => JSON.stringify(was[k]) !== JSON.stringify(settings[k]));
    if (diff.length > 0) {
      throw new ConfigError(
        `--resume: the run in ${out} was made with other settings: ${diff.map((k) => `${k} was ${JSON.stringify(was[k])}, now ${JSON.stringify(settings[k])}`).join('; ')}. ` +
          'Resume with the settings of the interrupted run, or start a new --out.',
      );
    }
    copyWeights(model, loadCheckpoint(found), found);
    loadOptimizerState(found, opt);
    if (opt.step !== st.step)
      throw new CheckpointError(`${found}: optimiser state is at step ${opt.step} but train_state.json at ${st.step}.`);
    pos = { epoch: st.data.epoch, index: st.data.index };
    lastSaved = st.step;
    if (lead) trimMetrics(metricsPath, st.step);
    rt.log.info(`resuming ${out} at step ${st.step} of ${total} (epoch ${pos.epoch + 1}, item ${pos.index})`);
  } else if (lead) {
    mkdirSync(out, { recursive: true });
    writeFileSync(metricsPath, '');
  }
  const startStep = opt.step;

  const state = (s: number, loss: LossParts | null): TrainState => ({
    format: TRAIN_STATE_FORMAT,
    version: 1,
    step: s,
    data: { ...pos, permutation_seed: seed, shuffle: opts.shuffle ?? true, steps_per_epoch: batcher.stepsPerEpoch },
    rng: { seed, scheme: 'per-step' },
    flags,
    loss: loss ? { ...loss } : null,
    time: new Date().toISOString(),
  });
  const save = (s: number, loss: LossParts | null): string => {
    const dir = lead
      ? writeTrainCheckpoint(out, student, opt, state(s, loss), opts.writeHook)
      : join(out, CHECKPOINT_DIR);
    lastSaved = s;
    return dir;
  };
  const log = (o: Record<string, unknown>) => {
    if (lead) appendFileSync(metricsPath, JSON.stringify(o) + '\n');
  };

  const evals: EvalRecord[] = [];
  const doEval = async (s: number) => {
    const r = await runEvalOn(rt, student, opts.eval!, s, opts.workers);
    evals.push(r);
    log({ type: 'eval', step: s, score: r.score, ...r.result });
    if (lead)
      rt.log.info(
        `eval at step ${s}: ${r.task === 'zeroshot' ? 'zero-shot top-1' : 'retrieval mean R@1'} ${(100 * r.score).toFixed(2)} %`,
      );
    return r;
  };

  let firstLoss: LossParts | null = null,
    lastLoss: LossParts | null = null;
  const recent: number[] = [];
  let pairsDone = 0;
  const tRun = performance.now();
  let checkpoint: string | null = found;
  let stopped = false,
    empty = 0;
  try {
    for (let s = startStep + 1; s <= total; s++) {
      const ts = performance.now();
      const d = await batcher.nextStep(pos, s);
      pos = d.next;
      if (d.micro.length === 0) {
        // every image of the step was skipped as bad (--skip-bad): take the next items for the same step
        if (++empty > batcher.stepsPerEpoch)
          throw new ConfigError(`${opts.data.spec}: no decodable images left to train on.`);
        s--;
        continue;
      }
      empty = 0;
      let r;
      try {
        r = accumulateStep(step, opt, d.micro, () => zeroGrads(cfg, grads), sync ? () => sync.sum() : undefined);
      } catch (e) {
        if (!(e instanceof NonFiniteLossError)) throw e;
        const keep =
          lastSaved === null
            ? 'no checkpoint had been written yet'
            : `the last good checkpoint (step ${lastSaved}) is in ${join(out, 'checkpoint')}`;
        throw new NonFiniteLossError(
          `step ${s}: ${e.message}; training stopped, ${keep}. Try a lower --lr or --grad-clip.`,
        );
      }
      pairsDone += d.pairs * world.size;
      firstLoss ??= r.loss;
      lastLoss = r.loss;
      recent.push(r.loss.total);
      if (recent.length > 10) recent.shift();
      const elapsed = (performance.now() - tRun) / 1000;
      const rate = pairsDone / Math.max(elapsed, 1e-9);
      const rec: StepRecord = {
        step: s,
        totalSteps: total,
        epoch: pos.epoch,
        loss: r.loss,
        lr: r.info.lr,
        gradNorm: r.info.gradNorm,
        pairs: d.pairs * world.size,
        pairsPerSecond: rate,
      };
      log({
        type: 'train',
        step: s,
        epoch: pos.epoch,
        ...r.loss,
        lr: r.info.lr,
        grad_norm: r.info.gradNorm,
        pairs_per_s: rate,
        step_s: (performance.now() - ts) / 1000,
      });
      if (lead && (s === startStep + 1 || s === total || s % logEvery === 0)) {
        const l = r.loss,
          eta = ((total - s) * elapsed) / (s - startStep);
        const parts = setup.teacher
          ? ` (con ${l.con.toFixed(3)} kd ${l.kd.toFixed(3)} emb ${l.emb.toFixed(4)} hid ${l.hid.toFixed(4)})`
          : '';
        rt.log.info(
          `step ${s}/${total}  loss ${l.total.toFixed(4)}${parts}  lr ${r.info.lr.toExponential(2)}  ${rate.toFixed(1)} pairs/s  ETA ${fmtTime(eta)}`,
        );
      }
      opts.onStep?.(rec);
      if (opts.eval && opts.eval.every > 0 && s % opts.eval.every === 0) await doEval(s);
      if (saveEvery > 0 && s % saveEvery === 0 && s < total) checkpoint = save(s, r.loss);
      if (opts.stopAfter !== undefined && s >= opts.stopAfter && s < total) {
        stopped = true;
        break;
      }
    }
    if (!stopped) {
      if (lastSaved !== total) checkpoint = save(total, lastLoss);
      if (lead) writeModelFolder(student, out);
    }
  } finally {
    await batcher.close();
  }
  let finalEval: EvalRecord | null = evals.length > 0 ? evals[evals.length - 1]! : null;
  if (!stopped && opts.eval && finalEval?.step !== total) finalEval = await doEval(total);
  const seconds = (performance.now() - t0) / 1000;
  return {
    out,
    checkpoint,
    startStep,
    steps: opt.step,
    totalSteps: total,
    epoch: pos.epoch,
    firstLoss,
    lastLoss,
    recentLoss: recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null,
    evals,
    finalEval,
    seconds,
    pairsPerSecond: pairsDone / Math.max((performance.now() - tRun) / 1000, 1e-9),
    stopped,
    worldSize: world.size,
    rankBatch: batcher.B / world.size,
  };
}
