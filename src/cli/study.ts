// `mope-clip study`: a resumable grid of compress runs (src/pipeline/study.ts) — criteria × targets × seeds, one
// budget — printing the table of mean ± std per target and criterion; OUT/study.json, OUT/table.md, OUT/report.html.
import { addTeacherCacheFlags, parseTeacherCacheFlags } from './teacher-cache-flags.ts';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { DEFAULT_LOSS_WEIGHTS } from '../distill/losses.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { resolveTemplates } from '../eval/templates.ts';
import { DEFAULT_CALIB_LIMIT } from '../pipeline/compress.ts';
import { parseCriterion } from '../pipeline/prune-steps.ts';
import { markdownStudyTable } from '../pipeline/study-report.ts';
import { formatStudyTable, parseTarget, runStudy } from '../pipeline/study.ts';
import { parseScope } from '../prune/plan.ts';
import { addLossFlags } from './loss-flags.ts';
import { collect, makeRuntime, PRECISION_HELP, parseNonNegativeInt, parsePositiveInt } from './common.ts';
import { processIO, type CliIO } from './io.ts';
import { parseDistillBudget, parseMin } from './distill-budget-flags.ts';

type Flags = Record<string, string | string[] | boolean | undefined>;

const list = (v: unknown) =>
  String(v)
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

/** Seeds as a count "3" (= 0,1,2) or a list "0,4" ("4," = seed 4 alone). */
export function parseSeeds(s: string): number[] {
  if (!s.includes(',')) return Array.from({ length: parsePositiveInt(s, '--seeds') }, (_, i) => i);
  const seeds = list(s).map((x) => parseNonNegativeInt(x, '--seeds'));
  if (seeds.length === 0 || new Set(seeds).size !== seeds.length) {
    throw new ConfigError(`--seeds: expected distinct seeds, found "${s}"`);
  }
  return seeds;
}

async function studyAction(io: CliIO, o: Flags): Promise<void> {
  for (const f of ['model', 'data', 'out'] as const) {
    if (o[f] === undefined) throw new ConfigError(`study needs --${f}`);
  }
  const stage = String(o.stage);
  if (stage !== 'finetune' && stage !== 'pretrain') {
    throw new ConfigError(`--stage expects finetune or pretrain, found "${stage}"`);
  }
  const tower = String(o.tower ?? (stage === 'pretrain' ? 'both' : ''));
  if (tower !== 'vision' && tower !== 'text' && tower !== 'both') {
    throw new ConfigError(`--tower expects vision, text or both, found "${tower}"`);
  }
  const str = (v: unknown) => (v === undefined ? undefined : String(v));
  const rt = makeRuntime({ threads: str(o.threads), seed: 0, precision: str(o.precision) });
  const out = String(o.out);
  const f = await runStudy(rt, {
    model: String(o.model),
    teacher: o.teacher === undefined ? undefined : String(o.teacher),
    data: String(o.data),
    calib: str(o.calib) ?? null,
    calibZeroshot: str(o.calibZeroshot) ?? null,
    calibZeroshotWeight:
      o.calibZeroshotWeight === undefined ? undefined : parseMin(o.calibZeroshotWeight, '--calib-zeroshot-weight'),
    calibLimit: parsePositiveInt(String(o.calibLimit), '--calib-limit'),
    stage,
    tower,
    criteria: list(o.criteria).map(parseCriterion),
    targets: list(o.targets).map(parseTarget),
    seeds: parseSeeds(String(o.seeds)),
    ffnGroupSize: parsePositiveInt(String(o.ffnGroupSize), '--ffn-group-size'),
    scope: parseScope(String(o.scope)),
    distill: parseDistillBudget(o),
    eval: (o.eval as string[] | undefined) ?? [],
    evalLimit: o.evalLimit === undefined ? undefined : parsePositiveInt(String(o.evalLimit), '--eval-limit'),
    templates: o.templates === undefined ? undefined : resolveTemplates(String(o.templates)),
    out,
    collectOnly: Boolean(o.collect),
    teacherCache: parseTeacherCacheFlags(o),
  });
  writeFileAtomic(`${out}/table.md`, markdownStudyTable(f.table, f.teacher) + '\n');
  io.out.write(
    `\n${formatStudyTable(f.table, f.teacher)}\n\n${f.runs.length} runs; ` +
      `${out}/study.json, ${out}/table.md, ${out}/report.html\n`,
  );
}

export function register(program: Command, io: CliIO = processIO): void {
  const cmd = program
    .command('study')
    .description(
      'Grid of resumable compress runs (criteria × targets × seeds, one budget): table of mean ± std, ' +
        'report.html with accuracy against GFLOPs',
    )
    .option('--model <dir>', 'checkpoint folder of the model to compress')
    .option('--teacher <dir>', 'teacher to distil from (default: --model)')
    .option('--data <spec>', 'image-text pairs for distillation')
    .option('--calib <spec>', 'calibration data for mope and taylor (pairs: retrieval Z)')
    .option('--calib-zeroshot <spec>', 'labelled images: mix zero-shot into Z')
    .option('--calib-zeroshot-weight <w>', 'weight of zero-shot Z in the mixed Z (default 0.5)')
    .option('--calib-limit <n>', 'calibration items', String(DEFAULT_CALIB_LIMIT))
    .option(
      '--stage <stage>',
      'pretrain (both towers: width + depth, one distillation) | finetune (one tower)',
      'pretrain',
    )
    .option('--tower <tower>', 'vision | text (finetune) | both (pretrain)')
    .option(
      '--criteria <list>',
      'comma list of mope, magnitude, taylor, random, scratch',
      'mope,magnitude,random,scratch',
    )
    .option('--targets <list>', 'comma list of widthNN or widthNN+depthMM (percent kept)', 'width50,width50+depth50')
    .option('--seeds <list>', 'a count N (seeds 0…N−1) or a comma list', '3')
    .option('--ffn-group-size <n>', 'FFN neurons per scored group', '32')
    .option('--scope <s>', 'per-layer | global', 'per-layer')
    .option('--steps <n>', 'distillation steps per distil stage', '200')
    .option('--width-steps <n>', 'steps of the distillation after width pruning (finetune; default --steps)')
    .option('--final-steps <n>', 'steps of the final distillation (default --steps)')
    .option('--batch <n>', 'distillation pairs per step', '64')
    .option('--lr <x>', 'distillation peak learning rate', '5e-4')
    .option('--weight-decay <x>', 'decoupled weight decay', '0.05')
    .option('--warmup <n>', 'warm-up steps', '10')
    .option('--grad-clip <x>', 'global gradient-norm clip (0 = off)', '1')
    .option('--eval <spec>', 'evaluation data (repeatable: classification → zero-shot, pairs → retrieval)', collect)
    .option('--eval-limit <n>', 'a deterministic subset of N items of each --eval set')
    .option('--templates <name|file>', 'zero-shot prompts: openai-7 (default), openai-80 or a file')
    .option('--out <dir>', 'study folder (a rerun skips finished runs and resumes the unfinished one)')
    .option('--collect', 'run nothing: gather the finished runs of the grid into study.json, table.md, report.html')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all CPUs)')
    .option('--precision <p>', PRECISION_HELP)
    .action(async (o: Flags) => studyAction(io, o));
  addLossFlags(cmd, DEFAULT_LOSS_WEIGHTS);
  addTeacherCacheFlags(cmd);
}
