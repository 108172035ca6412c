// `mope-clip demo [--retrain-teacher] [--out DIR]`: the README's main command (src/pipeline/demo.ts) — the small
// teacher, half-width compression of each tower with MoPE, magnitude, Taylor and random importance, distillation,
// and one table on stdout; report.html and demo.json in --out.
import type { Command } from 'commander';
import { runDemo } from '../pipeline/demo.ts';
import { parseCriterion, type Criterion } from '../pipeline/prune-steps.ts';
import { makeRuntime, PRECISION_HELP, parseNonNegativeInt, parsePositiveInt } from './common.ts';
import { demoTable } from '../pipeline/demo.ts';
import { ConfigError } from '../errors.ts';
import { processIO, type CliIO } from './io.ts';

interface DemoFlags {
  out: string;
  retrainTeacher?: boolean;
  cache?: string;
  criteria?: string;
  towers?: string;
  steps?: string;
  zeroshotLimit?: string;
  seed: string;
  threads?: string;
  precision?: string;
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('demo')
    .description('Train (or unpack) a small CLIP teacher, compress each tower to half width with MoPE, magnitude, Taylor and random importance, distil, and compare')
    .option('--out <dir>', 'output folder (a rerun resumes finished runs)', '.cache/demo/run')
    .option('--retrain-teacher', 'train the teacher from scratch (≈ 25 min) instead of using the shipped or cached one')
    .option('--cache <dir>', 'teacher cache folder (default .cache/demo in the package)')
    .option('--criteria <list>', 'comma list of mope, magnitude, taylor, random', 'mope,magnitude,taylor,random')
    .option('--towers <list>', 'comma list of vision, text', 'vision,text')
    .option('--steps <n>', 'distillation steps per compressed model')
    .option('--zeroshot-limit <n>', 'zero-shot on a fixed subset (seed 0) of N of the 7,000 fashion-mnist test images', '2000')
    .option('--seed <s>', 'seed of calibration subsets, the random criterion and distillation order', '0')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all CPUs)')
    .option('--precision <p>', PRECISION_HELP)
    .action(async (o: DemoFlags) => {
      const criteria: Criterion[] = String(o.criteria).split(',').map((c) => parseCriterion(c.trim()));
      const towers = String(o.towers).split(',').map((t) => t.trim());
      for (const t of towers) if (t !== 'vision' && t !== 'text') throw new ConfigError(`--towers expects vision and/or text, found "${t}"`);
      const seed = parseNonNegativeInt(o.seed, '--seed');
      const rt = makeRuntime({ threads: o.threads, seed, precision: o.precision });
      const r = await runDemo(rt, {
        out: o.out, cacheDir: o.cache, retrainTeacher: Boolean(o.retrainTeacher), criteria, towers: towers as Array<'vision' | 'text'>,
        distill: o.steps === undefined ? undefined : { steps: parseNonNegativeInt(o.steps, '--steps') },
        zeroshotLimit: parsePositiveInt(String(o.zeroshotLimit), '--zeroshot-limit'), seed,
      });
      io.out.write(`\n${demoTable(r.teacher, r.rows)}\n\nwall time ${(r.seconds / 60).toFixed(1)} min; report: ${o.out}/report.html\n`);
    });
}
