// `mope-clip score`: module importance (MoPE, magnitude, random) into scores.json, resumable and shardable;
// `mope-clip score merge A.json B.json … --out all.json` combines shards. Dims: see src/prune/modules.ts.
import { checkOutputFile } from '../io/out-path.ts';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { progressCallback } from '../ui/progress.ts';
import { loadCalibration } from '../prune/calibration.ts';
import { parseGranularity, parseShard, parseTowers } from '../prune/modules.ts';
import { parseTask } from '../prune/objective.ts';
import { runScore } from '../prune/score-run.ts';
import { canSplit, MIN_SPLIT_HALF, splitHalfAgreement } from '../prune/rank-agreement.ts';
import { mergeScores, readScoresFile, type Metric, type ScoresFile } from '../prune/scores-file.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import {
  emitJson,
  makeRuntime,
  parseBatch,
  PRECISION_HELP,
  parseNonNegativeInt,
  parsePositiveInt,
  specPath,
} from './common.ts';
import { processIO, type CliIO } from './io.ts';

interface ScoreFlags {
  model?: string;
  data?: string;
  zeroshotData?: string;
  task?: string;
  tower: string;
  granularity: string;
  ffnGroupSize: string;
  metric: string;
  seed?: string;
  limit?: string;
  out?: string;
  resume?: boolean;
  shard?: string;
  batch: string;
  variants: string;
  path: string;
  threads?: string;
  precision?: string;
  templates?: string;
  agreement?: boolean;
}

function parseMetric(s: string): Metric {
  if (s === 'mope' || s === 'magnitude' || s === 'random' || s === 'taylor') return s;
  throw new ConfigError(`--metric expects mope, magnitude, taylor or random, found "${s}"`);
}

/** A short summary of a scores file for stdout. */
function summary(f: ScoresFile, out: string) {
  return {
    out,
    metric: f.metric,
    task: f.task,
    base: f.base,
    modules: f.modules.length,
    expected_modules: f.expected_modules,
    complete: f.complete,
    shard: f.shard,
    cost: f.cost,
    speedup_vs_naive: f.cost.layer_forwards > 0 ? f.cost.naive_layer_forwards / f.cost.layer_forwards : null,
  };
}

async function scoreAction(io: CliIO, o: ScoreFlags): Promise<void> {
  if (!o.model) throw new ConfigError('score needs --model DIR');
  if (!o.out) throw new ConfigError('score needs --out scores.json');
  checkOutputFile(o.out, '--out', [
    { flag: '--model', path: o.model },
    { flag: '--data', path: specPath(o.data) },
    { flag: '--zeroshot-data', path: specPath(o.zeroshotData) },
  ]);
  const metric = parseMetric(o.metric);
  const towers = parseTowers(o.tower);
  const kinds = parseGranularity(o.granularity);
  const ffnGroupSize = parsePositiveInt(o.ffnGroupSize, '--ffn-group-size');
  const shard = o.shard === undefined ? null : parseShard(o.shard);
  const limit = o.limit === undefined ? null : parsePositiveInt(o.limit, '--limit');
  const seed = o.seed === undefined ? 0 : parseNonNegativeInt(o.seed, '--seed');
  const batch = parseBatch(o.batch);
  const variants = parsePositiveInt(o.variants, '--variants');
  const task = o.task === undefined ? null : parseTask(o.task);
  if (o.path !== 'fast' && o.path !== 'naive') throw new ConfigError(`--path expects fast or naive, found "${o.path}"`);
  if (metric === 'mope') {
    if (task === null) throw new ConfigError('--metric mope needs --task retrieval|zeroshot|both');
    if (o.data === undefined && !(task === 'zeroshot' && o.zeroshotData !== undefined))
      throw new ConfigError(`--task ${task} needs --data SPEC`);
    if (task === 'both' && o.zeroshotData === undefined)
      throw new ConfigError('--task both needs --zeroshot-data SPEC for the classes (and --data for the pairs)');
  }
  const rt = makeRuntime({ threads: o.threads, seed, precision: o.precision });
  const model = loadCheckpoint(o.model);
  if (metric === 'taylor' && o.data === undefined)
    throw new ConfigError('--metric taylor needs --data SPEC with calibration image-text pairs');
  const cal =
    metric === 'mope' || metric === 'taylor'
      ? await loadCalibration(model, {
          modelDir: o.model,
          task: metric === 'taylor' ? 'retrieval' : task!,
          data: o.data,
          zeroshotData: o.zeroshotData,
          limit: limit ?? undefined,
          seed,
          batch,
          templates: o.templates,
        })
      : null;
  const file = runScore(rt, model, cal, {
    out: o.out,
    modelPath: o.model,
    data: o.data ?? null,
    zeroshotData: o.zeroshotData ?? null,
    limit,
    task,
    metric,
    seed,
    towers,
    kinds,
    ffnGroupSize,
    shard,
    resume: Boolean(o.resume),
    batch,
    variants,
    naive: o.path === 'naive',
    // resumed modules count in the total, not in the rate; the bar ends when the last module is scored
    onProgress: progressCallback(`score ${metric}`),
  });
  // Split-half check: do two disjoint halves of the calibration set rank the modules alike?
  let agreement: Record<string, number> | null = null;
  if (metric === 'mope' && cal !== null && o.agreement !== false && shard === null && file.complete) {
    if (canSplit(cal)) {
      io.err.write('rank agreement: scoring the modules on each half of the calibration set …\n');
      agreement = splitHalfAgreement(rt, model, cal, file.modules, { ffnGroupSize, batch, variants });
      io.err.write(
        `rank agreement of two disjoint calibration halves (Spearman): ${Object.entries(agreement)
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ')}\n`,
      );
    } else {
      io.err.write(`rank agreement: skipped (each half needs ≥ ${MIN_SPLIT_HALF} calibration items)\n`);
    }
  }
  emitJson(io, { ...summary(file, o.out), rank_agreement: agreement });
}

function mergeAction(io: CliIO, files: string[], o: { out?: string }): void {
  if (!o.out) throw new ConfigError('score merge needs --out all.json');
  checkOutputFile(
    o.out,
    '--out',
    files.map((f) => ({ flag: 'input', path: f })),
  );
  const merged = mergeScores(files.map((name) => ({ name, file: readScoresFile(name) })));
  writeJsonAtomic(o.out, merged);
  if (!merged.complete) io.err.write(`warning: ${o.out} is incomplete: some shards are missing or unfinished\n`);
  emitJson(io, summary(merged, o.out));
}

export function register(program: Command, io: CliIO = processIO): void {
  const score = program
    .command('score')
    .description(
      'Score modules (heads, FFN groups, layers) by MoPE = Z(model) − Z(model without the module), or a baseline criterion',
    )
    .option('--model <dir>', 'checkpoint folder')
    .option('--data <spec>', 'calibration image-text pairs (retrieval) or labelled images (zeroshot)')
    .option('--zeroshot-data <spec>', 'labelled images for --task both (classes from the data set)')
    .option('--task <task>', 'retrieval | zeroshot | both')
    .option('--tower <tower>', 'vision | text | both', 'vision')
    .option('--granularity <list>', 'comma list of heads, ffn, layers', 'heads,ffn,layers')
    .option('--ffn-group-size <n>', 'FFN neurons per group', '64')
    .option('--metric <metric>', 'mope | magnitude | taylor (Σ|w·∂L_con/∂w| on --data pairs) | random', 'mope')
    .option('--seed <s>', 'seed for --limit subsets and the random metric')
    .option('--limit <n>', 'use a deterministic subset of N calibration items')
    .option('--out <file>', 'scores.json to write (updated after every module)')
    .option('--resume', 'continue an interrupted run in --out; finished modules are not redone')
    .option('--shard <I/N>', 'score only shard I of N (1 ≤ I ≤ N); merge the shards with `score merge`')
    .option('--batch <n>', 'items per forward pass', '32')
    .option(
      '--path <path>',
      'fast (reuse what a module does not change) or naive (whole model per module; the reference)',
      'fast',
    )
    .option('--variants <k>', 'masked variants of one layer stacked into one batch', '1')
    .option('--templates <name|file>', 'zero-shot prompt templates: openai-7 (default), openai-80 or a file')
    .option(
      '--no-agreement',
      'skip the split-half check (MoPE: the modules scored again on each half of the calibration set, Spearman of the rankings)',
    )
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all CPUs)')
    .option('--precision <p>', PRECISION_HELP)
    .action(async (o: ScoreFlags) => scoreAction(io, o));
  score
    .command('merge')
    .description('Combine shard score files of one run; refuses files from other models, data or tasks')
    .argument('<files...>', 'shard scores files')
    .option('--out <file>', 'merged scores.json')
    // commander hands a trailing --out to the parent `score` command when both define it; take it from there.
    .action((files: string[], o: { out?: string }, cmd: Command) =>
      mergeAction(io, files, { out: o.out ?? (cmd.parent?.opts() as { out?: string }).out }),
    );
}
