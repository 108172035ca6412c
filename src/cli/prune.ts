// `mope-clip prune`: structural pruning from a scores file into a smaller checkpoint folder plus
// prune_report.json (parameters before/after, kept heads / FFN widths / layers). Dims: see src/prune/plan.ts.
import { checkOutputDir } from '../io/out-path.ts';
import type { Command } from 'commander';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { copyAuxFiles, countParameters, loadCheckpoint, saveCheckpoint } from '../io/checkpoint.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { parseTowers } from '../prune/modules.ts';
import { describeKeep, makePlan, parseScope } from '../prune/plan.ts';
import { checkScoresMatchModel, readScoresFile } from '../prune/scores-file.ts';
import { pruneModel } from '../prune/structural.ts';
import { emitJson, parseFraction, parsePositiveInt } from './common.ts';
import { processIO, type CliIO } from './io.ts';

interface PruneFlags {
  model?: string;
  scores?: string;
  tower?: string;
  keepHeads?: string;
  keepFfn?: string;
  keepLayers?: string;
  scope: string;
  minHeads: string;
  out?: string;
  dtype: string;
}

export const PRUNE_REPORT_FILE = 'prune_report.json';

function parseDtype(s: string): 'F32' | 'F16' | 'BF16' {
  const d = s.toUpperCase();
  if (d === 'F32' || d === 'F16' || d === 'BF16') return d;
  throw new ConfigError(`--dtype expects f32, f16 or bf16, found "${s}"`);
}

function pruneAction(io: CliIO, o: PruneFlags): void {
  if (!o.model) throw new ConfigError('prune needs --model DIR');
  if (!o.scores) throw new ConfigError('prune needs --scores scores.json');
  if (!o.tower) throw new ConfigError('prune needs --tower vision|text|both');
  if (!o.out) throw new ConfigError('prune needs --out DIR');
  checkOutputDir(o.out, '--out', [
    { flag: '--model', path: o.model },
    { flag: '--scores', path: o.scores },
  ]);
  const towers = parseTowers(o.tower);
  const keepHeads = o.keepHeads === undefined ? undefined : parseFraction(o.keepHeads, '--keep-heads');
  const keepFfn = o.keepFfn === undefined ? undefined : parseFraction(o.keepFfn, '--keep-ffn');
  const keepLayers = o.keepLayers === undefined ? undefined : parsePositiveInt(o.keepLayers, '--keep-layers');
  const scope = parseScope(o.scope);
  const minHeads = Number(o.minHeads);
  if (!Number.isInteger(minHeads) || minHeads < 1) {
    throw new ConfigError(
      `--min-heads expects an integer ≥ 1 (a layer cannot keep zero heads; drop layers with --keep-layers), found "${o.minHeads}"`,
    );
  }
  const dtype = parseDtype(o.dtype);
  const scores = readScoresFile(o.scores);
  const model = loadCheckpoint(o.model);
  checkScoresMatchModel(scores, model, o.scores, o.model);
  if (scores.shard !== null) {
    io.err.write(
      `warning: ${o.scores} is shard ${scores.shard.index}/${scores.shard.count}; merge all shards first with \`mope-clip score merge\`\n`,
    );
  }
  // Everything is validated (plan built) before anything is written.
  const plan = makePlan(model, scores, { towers, keepHeads, keepFfn, keepLayers, scope, minHeads });
  const pruned = pruneModel(model, plan);
  const before = countParameters(model),
    after = countParameters(pruned);
  saveCheckpoint(pruned, o.out, { dtype });
  const copied = copyAuxFiles(o.model, o.out);
  const report = {
    model: o.model,
    scores: o.scores,
    metric: scores.metric,
    task: scores.task,
    out: o.out,
    options: {
      tower: o.tower,
      keep_heads: keepHeads ?? null,
      keep_ffn: keepFfn ?? null,
      keep_layers: keepLayers ?? null,
      scope,
      min_heads: minHeads,
    },
    params_before: before,
    params_after: after,
    params_ratio: after / before,
    towers: Object.fromEntries(towers.map((t) => [t, describeKeep(model, t, plan[t]!)])),
    copied_files: copied,
  };
  writeJsonAtomic(join(o.out, PRUNE_REPORT_FILE), report);
  emitJson(io, {
    out: o.out,
    params_before: before,
    params_after: after,
    params_ratio: after / before,
    report: join(o.out, PRUNE_REPORT_FILE),
  });
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('prune')
    .description('Remove the lowest-ranked heads, FFN neuron groups and layers for real, writing a smaller checkpoint')
    .option('--model <dir>', 'checkpoint folder (the one that was scored)')
    .option('--scores <file>', 'scores.json from `mope-clip score` (merged when sharded)')
    .option('--tower <tower>', 'vision | text | both')
    .option('--keep-heads <f>', 'fraction of attention heads kept, in (0, 1]')
    .option('--keep-ffn <f>', 'fraction of FFN neuron groups kept, in (0, 1]')
    .option('--keep-layers <n>', 'number of layers kept (the best N, in order)')
    .option('--scope <scope>', 'per-layer (same fraction in every layer) | global (rank across layers)', 'per-layer')
    .option('--min-heads <n>', 'heads every layer keeps at least', '1')
    .option('--dtype <dtype>', 'storage dtype of the pruned weights: f32 | f16 | bf16', 'f32')
    .option('--out <dir>', 'output checkpoint folder')
    .action((o: PruneFlags) => pruneAction(io, o));
}
