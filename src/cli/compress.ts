// `mope-clip compress`: the MoPE-CLIP pipeline (src/pipeline/compress.ts) — score, prune width, distil, prune depth
// one layer at a time with re-scoring, distil, evaluate — resumable in one run folder. Prints a JSON summary line.
import { checkOutputDir } from '../io/out-path.ts';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { resolveTemplates } from '../eval/templates.ts';
import { compress, DEFAULT_CALIB_LIMIT, fmtEval } from '../pipeline/compress.ts';
import { parseCriterion } from '../pipeline/prune-steps.ts';
import { DEFAULT_LOSS_WEIGHTS } from '../distill/losses.ts';
import { parseScope } from '../prune/plan.ts';
import { isFraction, isPositiveInt, parseTowerValues } from '../prune/tower-values.ts';
import { addLossFlags } from './loss-flags.ts';
import { rankRuntime, withWorld } from '../parallel/launch.ts';
import type { World } from '../parallel/world.ts';
import {
  collect,
  emitJson,
  makeRuntime,
  PRECISION_HELP,
  parseNonNegativeInt,
  parsePositiveInt,
  specPath,
} from './common.ts';
import { processIO, type CliIO } from './io.ts';
import { parseDistillBudget, parseMin } from './distill-budget-flags.ts';
import { addTeacherCacheFlags, parseTeacherCacheFlags } from './teacher-cache-flags.ts';

type Flags = Record<string, string | string[] | boolean | undefined>;

async function compressAction(io: CliIO, o: Flags, world: World): Promise<void> {
  for (const f of ['model', 'data', 'out'] as const)
    if (o[f] === undefined) throw new ConfigError(`compress needs --${f}`);
  if (o.stage === undefined) throw new ConfigError('compress needs --stage finetune|pretrain');
  const stage = String(o.stage);
  if (stage !== 'finetune' && stage !== 'pretrain')
    throw new ConfigError(`--stage expects finetune or pretrain, found "${stage}"`);
  const tower = String(o.tower ?? (stage === 'pretrain' ? 'both' : ''));
  if (tower !== 'vision' && tower !== 'text' && tower !== 'both')
    throw new ConfigError(`--tower expects vision, text or both, found "${tower}"`);
  checkOutputDir(String(o.out), '--out', [
    { flag: '--model', path: String(o.model) },
    { flag: '--data', path: specPath(o.data) },
    { flag: '--calib', path: specPath(o.calib) },
  ]);
  const seed = parseNonNegativeInt(String(o.seed), '--seed');
  const rt = rankRuntime(
    makeRuntime({ threads: o.threads as string | undefined, seed, precision: o.precision as string | undefined }),
    world,
  );
  const fractions = (v: unknown, flag: string) => parseTowerValues(String(v), flag, isFraction, 'a number in (0, 1]');
  const s = await compress(rt, {
    world,
    model: String(o.model),
    teacher: o.teacher === undefined ? undefined : String(o.teacher),
    data: String(o.data),
    calib: o.calib === undefined ? null : String(o.calib),
    calibZeroshot: o.calibZeroshot === undefined ? null : String(o.calibZeroshot),
    calibZeroshotWeight:
      o.calibZeroshotWeight === undefined ? undefined : parseMin(o.calibZeroshotWeight, '--calib-zeroshot-weight'),
    calibLimit: parsePositiveInt(String(o.calibLimit), '--calib-limit'),
    stage,
    tower,
    keepHeads: fractions(o.keepHeads, '--keep-heads'),
    keepFfn: fractions(o.keepFfn, '--keep-ffn'),
    keepLayers:
      o.keepLayers === undefined
        ? undefined
        : parseTowerValues(String(o.keepLayers), '--keep-layers', isPositiveInt, 'an integer ≥ 1'),
    scope: parseScope(String(o.scope)),
    criterion: parseCriterion(String(o.criterion)),
    ffnGroupSize: parsePositiveInt(String(o.ffnGroupSize), '--ffn-group-size'),
    distill: parseDistillBudget(o),
    eval: (o.eval as string[] | undefined) ?? [],
    evalLimit: o.evalLimit === undefined ? undefined : parsePositiveInt(String(o.evalLimit), '--eval-limit'),
    templates: o.templates === undefined ? undefined : resolveTemplates(String(o.templates)),
    seed,
    out: String(o.out),
    teacherCache: parseTeacherCacheFlags(o),
  });
  for (const [k, e] of Object.entries(s.evals)) rt.log.info(`${k}: ${fmtEval(e)}`);
  if (world.rank === 0) {
    emitJson(io, {
      out: s.out,
      final_model: s.final_model,
      report: `${s.out}/report.html`,
      evals: s.evals,
      seconds: s.seconds,
      world_size: world.size,
      batch_per_rank: s.batch_per_rank,
    });
  }
}

export function register(program: Command, io: CliIO = processIO): void {
  const cmd = program
    .command('compress')
    .description(
      'MoPE-CLIP pipeline: score → prune width → distil → prune depth (re-scoring after each layer) → distil → evaluate, resumable',
    )
    .option('--model <dir>', 'checkpoint folder of the model to compress')
    .option('--teacher <dir>', 'teacher to distil from and compare with (default: --model)')
    .option('--data <spec>', 'image-text pairs for distillation')
    .option('--calib <spec>', 'calibration data: pairs (retrieval MoPE) or labelled images (zero-shot MoPE)')
    .option('--calib-zeroshot <spec>', 'labelled images: with --calib pairs, score on both tasks')
    .option(
      '--calib-zeroshot-weight <w>',
      'weight w of zero-shot Z in Z = (1 − w)·Z_retrieval + w·Z_zeroshot (with --calib-zeroshot; default 0.5)',
    )
    .option('--calib-limit <n>', 'calibration items (a deterministic subset per --seed)', String(DEFAULT_CALIB_LIMIT))
    .option(
      '--stage <stage>',
      'finetune (one tower, width → distil → depth → distil) | pretrain (both towers, width + depth → distil)',
    )
    .option('--tower <tower>', 'vision | text (finetune) | both (pretrain, the default there)')
    .option('--keep-heads <f>', 'fraction of attention heads kept: 0.5, or per tower vision=0.5,text=0.75', '1')
    .option('--keep-ffn <f>', 'fraction of FFN neuron groups kept: 0.5, or per tower vision=0.5,text=0.75', '1')
    .option(
      '--keep-layers <n>',
      'layers kept per compressed tower: 2, or per tower vision=2,text=3 (removed one at a time, re-scored after each)',
    )
    .option(
      '--scope <s>',
      'per-layer (the fraction in every layer) | global (the fraction of the whole tower, at least one head per layer)',
      'per-layer',
    )
    .option(
      '--criterion <c>',
      'module importance: mope | magnitude | taylor | random | scratch (the pruned shape, fresh weights)',
      'mope',
    )
    .option('--ffn-group-size <n>', 'FFN neurons per scored group', '32')
    .option('--steps <n>', 'distillation steps per distil stage (0 = prune only)', '200')
    .option('--width-steps <n>', 'steps of the distillation after width pruning (finetune stage; default --steps)')
    .option(
      '--final-steps <n>',
      'steps of the final distillation (after depth pruning, or the pretrain stage; default --steps)',
    )
    .option('--batch <n>', 'distillation pairs per step', '64')
    .option('--lr <x>', 'distillation peak learning rate', '5e-4')
    .option('--weight-decay <x>', 'decoupled weight decay', '0.05')
    .option('--warmup <n>', 'warm-up steps', '10')
    .option('--grad-clip <x>', 'global gradient-norm clip (0 = off)', '1')
    .option(
      '--eval <spec>',
      'evaluate every stage on this data (repeatable: classification → zero-shot, pairs → retrieval)',
      collect,
    )
    .option('--eval-limit <n>', 'a fixed subset (seed 0, whatever --seed) of N items of each --eval set')
    .option('--templates <name|file>', 'zero-shot prompts: openai-7 (default), openai-80 or a file')
    .option('--seed <s>', 'seed of calibration subsets, the random criterion and distillation order', '0')
    .option('--out <dir>', 'run folder (a rerun resumes at the first unfinished stage)')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all CPUs)')
    .option('--precision <p>', PRECISION_HELP)
    .action((o: Flags) => withWorld((world) => compressAction(io, o, world)));
  addLossFlags(cmd, DEFAULT_LOSS_WEIGHTS);
  addTeacherCacheFlags(cmd);
}
