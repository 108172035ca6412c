// `mope-clip demo [--seeds N] [--retrain-teacher] [--out DIR]`: the README's main command (src/pipeline/demo.ts) — the
// small teacher compressed (both towers) to width50 and width50+depth50 with MoPE, magnitude, random and scratch, each
// distilled with one budget, over several seeds; one table of mean ± std on stdout; study.json, table.md, report.html.
import type { Command } from 'commander';
import {
  DEMO_CALIB,
  DEMO_CRITERIA,
  DEMO_DISTILL,
  DEMO_EVAL,
  DEMO_SEEDS,
  DEMO_TARGETS,
  runDemo,
} from '../pipeline/demo.ts';
import { parseCriterion } from '../pipeline/prune-steps.ts';
import { formatStudyTable } from '../pipeline/study.ts';
import { makeRuntime, PRECISION_HELP, parseNonNegativeInt, parsePositiveInt } from './common.ts';
import { parseSeeds } from './study.ts';
import { processIO, type CliIO } from './io.ts';

interface DemoFlags {
  out: string;
  retrainTeacher?: boolean;
  cache?: string;
  criteria: string;
  targets: string;
  seeds: string;
  steps?: string;
  zeroshotLimit: string;
  calibLimit: string;
  collect?: boolean;
  threads?: string;
  precision?: string;
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('demo')
    .description(
      'A small study: the shipped small CLIP teacher compressed (both towers) to half width, and ' +
        'half width + half depth, with MoPE, magnitude, random and scratch, distilled with one budget, over several ' +
        'seeds; table of mean ± std',
    )
    .option('--out <dir>', 'output folder (a rerun skips finished runs)', '.cache/demo/study')
    .option('--retrain-teacher', 'train the teacher from scratch (≈ 25 min) instead of using the shipped or cached one')
    .option('--cache <dir>', 'teacher cache folder (default .cache/demo in the package)')
    .option('--criteria <list>', 'comma list of mope, magnitude, taylor, random, scratch', DEMO_CRITERIA.join(','))
    .option('--targets <list>', 'comma list of widthNN or widthNN+depthMM', DEMO_TARGETS.join(','))
    .option('--seeds <list>', 'a count N (seeds 0…N−1) or a comma list', String(DEMO_SEEDS.length))
    .option('--steps <n>', `distillation steps per compressed model (default ${DEMO_DISTILL.steps})`)
    .option(
      '--zeroshot-limit <n>',
      'items of each evaluation set (fixed subset, seed 0; fashion-scenes test: 1,000)',
      String(DEMO_EVAL.limit),
    )
    .option('--calib-limit <n>', 'MoPE calibration pairs (fashion-scenes val)', String(DEMO_CALIB.limit))
    .option('--collect', 'run nothing: gather the finished runs into study.json, table.md, report.html')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all CPUs)')
    .option('--precision <p>', PRECISION_HELP, 'auto')
    .action(async (o: DemoFlags) => {
      const rt = makeRuntime({ threads: o.threads, seed: 0, precision: o.precision });
      const f = await runDemo(rt, {
        out: o.out,
        cacheDir: o.cache,
        retrainTeacher: Boolean(o.retrainTeacher),
        criteria: o.criteria.split(',').map((c) => parseCriterion(c.trim())),
        targets: o.targets.split(',').map((t) => t.trim()),
        seeds: parseSeeds(o.seeds),
        distill: o.steps === undefined ? undefined : { steps: parseNonNegativeInt(o.steps, '--steps') },
        zeroshotLimit: parsePositiveInt(o.zeroshotLimit, '--zeroshot-limit'),
        calibLimit: parsePositiveInt(o.calibLimit, '--calib-limit'),
        collectOnly: Boolean(o.collect),
      });
      io.out.write(
        `\n${formatStudyTable(f.table, f.teacher)}\n\n` +
          `wall time ${(f.seconds / 60).toFixed(1)} min; report: ${o.out}/report.html\n`,
      );
    });
}
