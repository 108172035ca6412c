// Flags shared by `train` and `distill` (data, schedule, optimiser, eval, checkpoints) and their parsing into
// trainLoop options; also the run's JSON summary printed at the end. See docs/train.md.
import { checkOutputDir } from '../io/out-path.ts';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { openDataset, SPEC_HELP } from '../data/spec.ts';
import { resolveTemplates } from '../eval/templates.ts';
import type { Tower } from '../model/workspace.ts';
import { DEFAULT_OPTIM, type OptimConfig } from '../train/optim.ts';
import type { TrainLoopOptions, TrainResult } from '../train/loop.ts';
import { addDataFlags, dataOptions } from './data-flags.ts';
import { parseBatch, parseNonNegativeInt, parsePositiveInt, PRECISION_HELP, specPath } from './common.ts';
import { LIMITS } from '../io/limits.ts';

export type Flags = Record<string, string | boolean | undefined>;

export function addTrainFlags(cmd: Command): Command {
  cmd
    .requiredOption('--data <spec>', `training data: ${SPEC_HELP} (a classification set trains on its class prompts)`)
    .option('--steps <n>', 'optimiser steps (or --epochs)')
    .option('--epochs <n>', 'passes over the data (each drops its last incomplete step)')
    .option('--batch <n>', 'pairs per micro-batch (the contrastive batch)', '32')
    .option('--accum <k>', 'micro-batches accumulated per optimiser step', '1')
    .option('--lr <x>', 'peak learning rate', String(DEFAULT_OPTIM.lr))
    .option('--min-lr <x>', 'floor of the cosine decay', '0')
    .option('--optimizer <name>', 'adamw | sgd', 'adamw')
    .option(
      '--weight-decay <x>',
      'decoupled weight decay (none on biases, norms, embeddings, logit_scale)',
      String(DEFAULT_OPTIM.weightDecay),
    )
    .option('--momentum <x>', 'sgd momentum', '0')
    .option('--warmup <n>', 'linear warm-up steps before the cosine decay', '0')
    .option('--grad-clip <x>', 'clip the global gradient norm to this (0 = off)', '0')
    .option('--no-shuffle', 'keep the data order (default: a seeded shuffle per epoch)')
    .option('--freeze <tower>', 'do not train this tower: text | vision')
    .option('--eval <spec>', 'evaluate on this data (classification → zero-shot top-1, pairs → retrieval mean R@1)')
    .option('--eval-every <n>', 'evaluate every N steps (0 = only at the end)', '0')
    .option('--eval-limit <n>', 'a deterministic subset of N eval items')
    .option(
      '--templates <name|file>',
      'zero-shot prompts for --eval and for training on a classification set: openai-7 (default), openai-80, or a file',
    )
    .requiredOption('--out <dir>', 'run folder: checkpoint/, metrics.jsonl, and the final model')
    .option('--save-every <n>', 'checkpoint every N steps (0 = only at the end)', '0')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--log-every <n>', 'progress line every N steps', '10')
    .option(
      '--workers <n>',
      'image decode worker threads (0 = decode between forwards; default: 0 when the compute threads take every CPU of a machine of at most 4, else 1 up to 4 CPUs and a quarter of them above, within the CPUs left free)',
    )
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all cores)')
    .option('--precision <p>', PRECISION_HELP);
  return addDataFlags(cmd);
}

function num(v: unknown, flag: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new ConfigError(`${flag} expects a number ≥ ${min}, found "${String(v)}".`);
  return n;
}

export function parseFreeze(v: unknown): Partial<Record<Tower, boolean>> | undefined {
  if (v === undefined) return undefined;
  if (v !== 'text' && v !== 'vision') throw new ConfigError(`--freeze expects text or vision, found "${String(v)}".`);
  return { [v]: true };
}

/** Everything of TrainLoopOptions that the shared flags decide (student, teacher and loss weights come from the command). */
export function parseTrainFlags(o: Flags): Omit<TrainLoopOptions, 'student'> {
  if ((o.steps === undefined) === (o.epochs === undefined))
    throw new ConfigError('give exactly one of --steps N or --epochs N.');
  if (o.optimizer !== 'adamw' && o.optimizer !== 'sgd')
    throw new ConfigError(`--optimizer expects adamw or sgd, found "${String(o.optimizer)}".`);
  const optim: Partial<OptimConfig> = {
    optimizer: o.optimizer,
    lr: num(o.lr, '--lr'),
    minLr: num(o.minLr, '--min-lr'),
    weightDecay: num(o.weightDecay, '--weight-decay'),
    warmup: parseNonNegativeInt(String(o.warmup), '--warmup'),
    gradClip: num(o.gradClip, '--grad-clip'),
    momentum: num(o.momentum, '--momentum'),
  };
  checkOutputDir(
    String(o.out),
    '--out',
    ['model', 'student', 'teacher', 'init']
      .map((k) => ({ flag: `--${k}`, path: o[k] as string | undefined }))
      .concat([
        { flag: '--data', path: specPath(o.data) },
        { flag: '--eval', path: specPath(o.eval) },
      ]),
  );
  const dopts = dataOptions(o);
  const { dataset, bad } = openDataset(String(o.data), dopts);
  const templates = o.templates === undefined ? undefined : resolveTemplates(String(o.templates));
  let evalSpec: TrainLoopOptions['eval'] = null;
  if (o.eval !== undefined) {
    const limit = o.evalLimit === undefined ? undefined : parsePositiveInt(String(o.evalLimit), '--eval-limit');
    const ev = openDataset(String(o.eval), { ...dopts, limit });
    evalSpec = {
      data: ev.dataset,
      bad: ev.bad,
      every: parseNonNegativeInt(String(o.evalEvery), '--eval-every'),
      templates,
    };
  } else if (o.evalEvery !== '0' && o.evalEvery !== undefined) {
    throw new ConfigError('--eval-every needs --eval SPEC.');
  }
  const freeze = parseFreeze(o.freeze);
  return {
    data: dataset,
    bad,
    steps: o.steps === undefined ? undefined : parsePositiveInt(String(o.steps), '--steps'),
    epochs: o.epochs === undefined ? undefined : parsePositiveInt(String(o.epochs), '--epochs'),
    batch: parseBatch(String(o.batch)),
    accum: parsePositiveInt(String(o.accum), '--accum'),
    optim,
    freeze,
    shuffle: o.shuffle !== false,
    seed: dopts.seed ?? 0,
    eval: evalSpec,
    out: String(o.out),
    saveEvery: parseNonNegativeInt(String(o.saveEvery), '--save-every'),
    resume: Boolean(o.resume),
    logEvery: parsePositiveInt(String(o.logEvery), '--log-every'),
    workers:
      o.workers === undefined ? undefined : parseNonNegativeInt(String(o.workers), '--workers', LIMITS.maxWorkers),
    flags: {
      data: o.data,
      limit: dopts.limit ?? null,
      batch: o.batch,
      accum: o.accum,
      optimizer: o.optimizer,
      lr: optim.lr,
      min_lr: optim.minLr,
      weight_decay: optim.weightDecay,
      warmup: optim.warmup,
      grad_clip: optim.gradClip,
      seed: dopts.seed ?? 0,
      shuffle: o.shuffle !== false,
      freeze: o.freeze ?? null,
      templates: o.templates ?? null,
    },
  };
}

/** The JSON line a training command prints at the end. */
export function resultJson(r: TrainResult): Record<string, unknown> {
  return {
    out: r.out,
    checkpoint: r.checkpoint,
    steps: r.steps,
    total_steps: r.totalSteps,
    resumed_from: r.startStep,
    epoch: r.epoch,
    first_loss: r.firstLoss,
    last_loss: r.lastLoss,
    recent_loss: r.recentLoss,
    eval: r.finalEval ? { step: r.finalEval.step, task: r.finalEval.task, score: r.finalEval.score } : null,
    seconds: r.seconds,
    pairs_per_s: r.pairsPerSecond,
    world_size: r.worldSize,
    batch_per_rank: r.rankBatch,
  };
}
