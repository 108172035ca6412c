// `mope-clip eval`: zero-shot classification or image-text retrieval metrics (CLIP_benchmark definitions) as JSON.
import { checkOutputDir, checkOutputFile } from '../io/out-path.ts';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { emitJson, makeRuntime, parseBatch, PRECISION_HELP, parseNonNegativeInt, specPath } from './common.ts';
import { LIMITS } from '../io/limits.ts';
import { addDataFlags, dataOptions } from './data-flags.ts';
import { runEval } from '../eval/run.ts';
import { SPEC_HELP } from '../data/spec.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  const cmd = program
    .command('eval')
    .description(
      'Evaluate a checkpoint: zero-shot top-1/top-5/mean per-class recall, or retrieval recall@1/5/10 in both directions. Metrics are fractions in [0, 1].',
    )
    .requiredOption('--model <dir>', 'checkpoint folder')
    .requiredOption('--task <task>', 'zeroshot | retrieval')
    .requiredOption('--data <spec>', SPEC_HELP)
    .option(
      '--templates <name|file>',
      'zero-shot prompts: openai-7 (default), openai-80, or a file with one template per line containing {}',
    )
    .option('--batch <n>', 'images / texts per forward pass', '32')
    .option(
      '--workers <n>',
      'image decode worker threads (0 = decode between forwards; default: 0 when the compute threads take every CPU of a machine of at most 4, else 1 up to 4 CPUs and a quarter of them above, within the CPUs left free)',
    )
    .option('--cache <dir>', 'cache embeddings here, keyed by model weights, data and preprocessing')
    .option('--no-progress', 'no progress bar (it shows only when stderr is a terminal anyway)')
    .option('--out <file>', 'write the JSON result here (atomically) instead of stdout')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all cores)')
    .option('--precision <p>', PRECISION_HELP);
  addDataFlags(cmd).action(async (o) => {
    if (o.task !== 'zeroshot' && o.task !== 'retrieval')
      throw new ConfigError(`--task: expected zeroshot or retrieval, found "${o.task}".`);
    const batch = parseBatch(o.batch);
    const workers =
      o.workers === undefined ? undefined : parseNonNegativeInt(o.workers, '--workers', LIMITS.maxWorkers);
    const inputs = [
      { flag: '--model', path: o.model },
      { flag: '--data', path: specPath(o.data) },
      { flag: '--templates', path: o.templates },
    ];
    if (o.out) checkOutputFile(o.out, '--out', inputs);
    if (o.cache) checkOutputDir(o.cache, '--cache', inputs);
    const rt = makeRuntime({ threads: o.threads, precision: o.precision });
    const result = await runEval(rt, {
      modelDir: o.model,
      task: o.task,
      data: o.data,
      templates: o.templates,
      batch,
      workers,
      cacheDir: o.cache,
      progress: o.progress,
      ...dataOptions(o),
    });
    emitJson(io, result, o.out);
  });
}
