// `mope-clip bench --mode infer`: images/s and texts/s (77 tokens) of a standard geometry with random weights.
// The last line of output is JSON {"images_per_s", "texts_per_s", ...}; `npm run bench` puts PyTorch's figures beside it.
// `--mode deploy --model DIR [--vs DIR]`: onnxruntime-node speed of the exported model(s), in src/bench/deploy.ts.
// `--mode train`: pairs/s of one distillation step (half-width ViT-B/32 student, full teacher), in src/bench/train.ts.
// `--mode compress`: a reduced real-size `compress` (src/bench/compress.ts): wall time and peak memory per stage.
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { makeRuntime, parseBatch, PRECISION_HELP, parseNonNegativeInt, parsePositiveInt } from './common.ts';
import { LIMITS } from '../io/limits.ts';
import { checkBatchMemory } from '../model/config.ts';
import { configFromGeometry, GEOMETRIES, initClipModel, type GeometryName } from '../model/init.ts';
import { benchInfer, precisionFields, type InferBench } from '../bench/infer.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('bench')
    .description(
      'Measure inference speed on random weights of a standard CLIP geometry (texts at 77 tokens). The last output line is JSON.',
    )
    .option('--geometry <name>', `one of ${Object.keys(GEOMETRIES).join(', ')}`, 'vit-b-32')
    .option('--batch <n>', 'batch size', '32')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all cores)')
    .option('--precision <p>', PRECISION_HELP)
    .option(
      '--mode <mode>',
      'infer (engine, random weights of --geometry), train (one distillation step, half-width ' +
        'ViT-B/32 student), deploy (onnxruntime-node on exported --model / --vs) or compress (a reduced compress of ' +
        '--geometry: time and peak memory per stage)',
      'infer',
    )
    .option('--model <dir>', 'deploy: checkpoint folder to export and time')
    .option(
      '--vs <dir>',
      'deploy: a second checkpoint (e.g. the pruned student) timed side by side, with speed-up ÷ FLOP ratio',
    )
    .option('--runs <n>', 'deploy: batch-1 calls whose median is the latency', '10')
    .option('--iters <n>', 'timed repetitions after one warm-up (best is reported)', '2')
    .option('--json', 'print only the JSON line')
    .option('--calib-limit <n>', 'compress: calibration pairs', '16')
    .option('--steps <n>', 'compress: distillation steps per distil stage (of --batch pairs)', '4')
    .option('--eval-limit <n>', 'compress: items of each builtin eval set', '64')
    .option('--ffn-group-size <n>', 'compress: FFN neurons per scored group', '256')
    .option('--seed <s>', 'compress: seed of the random model and the run', '0')
    .option('--out <dir>', 'compress: keep the model and run folder here (default: a temporary folder, removed)')
    .action(async (o) => {
      if (o.mode === 'deploy') return deployAction(io, o);
      if (o.mode === 'compress') return compressAction(io, o);
      if (o.mode === 'train') return trainAction(io, o);
      if (o.mode !== 'infer') {
        throw new ConfigError(`--mode: expected "train", "infer", "deploy" or "compress", found "${o.mode}".`);
      }
      if (!(o.geometry in GEOMETRIES))
        throw new ConfigError(
          `--geometry: expected one of ${Object.keys(GEOMETRIES).join(', ')}, found "${o.geometry}".`,
        );
      const batch = parseBatch(o.batch);
      const iters = parsePositiveInt(o.iters, '--iters', LIMITS.maxIters);
      checkBatchMemory(configFromGeometry(o.geometry as GeometryName), batch);
      const rt = makeRuntime(o);
      const model = initClipModel(o.geometry as GeometryName, 0);
      const r = benchInfer(rt, model, batch, iters);
      const out: InferBench = { geometry: o.geometry, batch, threads: rt.threads, ...precisionFields(rt), ...r };
      if (!o.json) {
        io.out.write(
          `${o.geometry}, batch ${batch}, ${rt.threads} threads, ${out.precision} (oneDNN ISA ${out.isa}): ${r.images_per_s.toFixed(2)} images/s, ${r.texts_per_s.toFixed(2)} texts/s (77 tokens)\n`,
        );
      }
      io.out.write(JSON.stringify(out) + '\n');
    });
}

async function deployAction(io: CliIO, o: Record<string, string | boolean | undefined>): Promise<void> {
  if (typeof o.model !== 'string') throw new ConfigError('--mode deploy needs --model DIR (a checkpoint folder).');
  const { benchDeploy, formatDeployBench } = await import('../bench/deploy.ts');
  const rt = makeRuntime(o as { threads?: string });
  const r = await benchDeploy({
    model: o.model,
    vs: typeof o.vs === 'string' ? o.vs : undefined,
    batch: parseBatch(String(o.batch)),
    threads: rt.threads,
    rt,
    runs: parsePositiveInt(String(o.runs), '--runs', LIMITS.maxIters),
    iters: parsePositiveInt(String(o.iters), '--iters', LIMITS.maxIters),
    log: o.json ? undefined : (m) => io.err.write(m + '\n'),
  });
  if (!o.json) io.out.write(formatDeployBench(r));
  io.out.write(JSON.stringify(r) + '\n');
}

async function trainAction(io: CliIO, o: Record<string, string | boolean | undefined>): Promise<void> {
  const { benchTrain } = await import('../bench/train.ts');
  const batch = parseBatch(String(o.batch)),
    iters = parsePositiveInt(String(o.iters), '--iters', LIMITS.maxIters);
  checkBatchMemory(configFromGeometry('vit-b-32'), batch, '--batch', true);
  const rt = makeRuntime(o as { threads?: string; precision?: string });
  const r = { ...benchTrain(rt, { batch, iters }), ...precisionFields(rt) };
  if (!o.json)
    io.out.write(
      `distillation step, ${r.student} vs ${r.teacher}, batch ${r.batch}, ${r.threads} threads, ${r.precision} (oneDNN ISA ${r.isa}): ${r.pairs_per_s.toFixed(2)} pairs/s (${r.step_s.toFixed(2)} s/step)\n`,
    );
  io.out.write(JSON.stringify(r) + '\n');
}

async function compressAction(io: CliIO, o: Record<string, string | boolean | undefined>): Promise<void> {
  if (!(String(o.geometry) in GEOMETRIES)) {
    throw new ConfigError(`--geometry: expected one of ${Object.keys(GEOMETRIES).join(', ')}, found "${o.geometry}".`);
  }
  const { benchCompress } = await import('../bench/compress.ts');
  const { compress } = await import('../pipeline/compress.ts');
  const { DEMO_EVAL } = await import('../pipeline/demo.ts');
  const seed = parseNonNegativeInt(String(o.seed), '--seed');
  const rt = makeRuntime({
    threads: o.threads as string | undefined,
    seed,
    precision: o.precision as string | undefined,
  });
  const int = (k: string, flag: string) => parsePositiveInt(String(o[k]), flag);
  const settings = {
    geometry: String(o.geometry) as GeometryName,
    calib: int('calibLimit', '--calib-limit'),
    steps: parseNonNegativeInt(String(o.steps), '--steps'),
    batch: parseBatch(String(o.batch)),
    evalLimit: int('evalLimit', '--eval-limit'),
    ffnGroupSize: int('ffnGroupSize', '--ffn-group-size'),
    seed,
    out: typeof o.out === 'string' ? o.out : undefined,
  };
  const r = await benchCompress(
    settings,
    (a) =>
      compress(rt, {
        model: a.model,
        data: 'builtin:fashion-scenes:train',
        calib: 'builtin:fashion-scenes:val',
        calibLimit: a.calibLimit,
        stage: 'finetune',
        tower: 'vision',
        keepHeads: 0.5,
        keepFfn: 0.5,
        keepLayers: a.keepLayers,
        criterion: 'mope',
        ffnGroupSize: a.ffnGroupSize,
        distill: { steps: a.steps, batch: a.batch, lr: 5e-4, weightDecay: 0.05, warmup: 1, gradClip: 1 },
        eval: [DEMO_EVAL.zeroshot, DEMO_EVAL.retrieval],
        evalLimit: a.evalLimit,
        seed: a.seed,
        out: a.out,
        onStage: a.onStage,
      }),
    o.json ? undefined : (m) => io.err.write(m + '\n'),
  );
  io.out.write(JSON.stringify({ ...r, threads: rt.threads, ...precisionFields(rt) }) + '\n');
}
