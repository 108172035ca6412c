// `npm run bench`: our figures next to PyTorch's (Debian python3-torch, same geometry, batch and threads), in fp32
// and in bf16 (ours: oneDNN bf16 GEMMs; PyTorch: torch.autocast("cpu", torch.bfloat16)), all in one run, as ratios.
// Usage: npm run bench -- [--geometry vit-b-32] [--batch 32] [--threads 2] [--iters 2]
//                         [--only infer,eval,score,train] [--precision fp32,bf16] [--workers N (eval)]
// Default: all four sections (train: one distillation step, src/bench/train.ts vs src/bench/torch_train_bench.py).
// The PyTorch twins' Debian packages are installed first when missing (scripts/setup-bench.sh).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { loadDnnl, loadKernels, loadNativeKernels } from '../engine/native.ts';
import { cpuFeatures, type Precision } from '../engine/precision.ts';
import { resolveThreads, stderrLogger, type Runtime } from '../engine/runtime.ts';
import { initClipModel, type GeometryName } from '../model/init.ts';
import { benchInfer, type InferSpeed } from './infer.ts';
import { benchEval } from './eval.ts';
import { benchScore } from './score.ts';
import { benchTrain } from './train.ts';
import { formatBenchTable, type BenchRow } from './table.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

/** The CPU's model name and its bf16-relevant flags (what decides oneDNN's bf16 path). */
function cpuLine(): string {
  let model = 'unknown CPU';
  try {
    model = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? model;
  } catch {
    /* not Linux */
  }
  const f = cpuFeatures();
  const flags = ['avx2', 'avx512f', 'avx512_bf16', 'avx512_fp16', 'amx_bf16'].filter((x) => f.has(x));
  return `${model} (${flags.join(', ') || 'no AVX2'})`;
}

/** Runs a PyTorch twin; null (and the reason on stderr) when it fails. */
function python<T>(script: string, args: string[]): T | null {
  // The twin inherits our process's environment as the addon's loader (src/engine/native.ts) left it:
  // OPENBLAS_CORETYPE for recent CPUs that Debian's OpenBLAS does not know (else PyTorch's fp32 runs OpenBLAS's
  // generic kernel), and OMP_WAIT_POLICY=PASSIVE unless the user set it (PyTorch's spinning OpenMP workers
  // otherwise lose several times their speed on a shared machine, which would flatter our ratios).
  const env = { ...process.env };
  const r = spawnSync('/usr/bin/python3', [join(here, script), ...args], { encoding: 'utf8', env });
  if (r.status !== 0) {
    process.stderr.write(`PyTorch twin ${script} ${args.join(' ')} failed:\n${r.stderr}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

function setupTwins(): void {
  const r = spawnSync('bash', [join(root, 'scripts', 'setup-bench.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.stderr.write('scripts/setup-bench.sh failed: the PyTorch columns will read n/a\n');
}

async function main(): Promise<void> {
  const geometry = arg('geometry', 'vit-b-32') as GeometryName;
  const batch = Number(arg('batch', '32'));
  const threads = resolveThreads(Number(arg('threads', '2')));
  const iters = Number(arg('iters', '2'));
  const only = new Set(arg('only', 'infer,eval,score,train').split(','));
  const precisions = arg('precision', 'fp32,bf16').split(',') as Precision[];
  loadNativeKernels().setThreads(threads);
  const rtOf = (precision: Precision): Runtime => ({
    kernels: loadKernels(precision),
    threads,
    seed: 0,
    log: stderrLogger,
    precision,
  });
  const dnnl = loadDnnl();
  const isa = dnnl.dnnlInfo(true).isa,
    impl = dnnl.dnnlInfo(true).impl;
  const cpu = cpuLine();
  if (only.has('infer') || only.has('train')) setupTwins();
  const results: Record<string, unknown> = { geometry, batch, threads, cpu, isa, bf16_impl: impl };
  const py = ['--batch', String(batch), '--threads', String(threads), '--iters', String(iters)];
  const rows: BenchRow[] = [],
    cpuRows: BenchRow[] = [];

  if (only.has('infer')) {
    const model = initClipModel(geometry, 0);
    const infer: Record<string, unknown> = {};
    const img: BenchRow = { name: 'images/s', unit: 'img/s' };
    const txt: BenchRow = { name: 'texts/s (77 tokens)', unit: 'txt/s' };
    const imgC: BenchRow = { name: 'images/CPU-s', unit: 'img' },
      txtC: BenchRow = { name: 'texts/CPU-s', unit: 'txt' };
    for (const p of precisions) {
      process.stderr.write(`bench infer ${p}: ${geometry}, batch ${batch}, ${threads} threads …\n`);
      const ours = benchInfer(rtOf(p), model, batch, iters);
      const torch = python<InferSpeed & { torch: string }>('torch_bench.py', [
        '--geometry',
        geometry,
        '--precision',
        p,
        ...py,
      ]);
      img[p] = { ours: ours.images_per_s, torch: torch?.images_per_s };
      txt[p] = { ours: ours.texts_per_s, torch: torch?.texts_per_s };
      imgC[p] = { ours: ours.images_per_cpu_s, torch: torch?.images_per_cpu_s };
      txtC[p] = { ours: ours.texts_per_cpu_s, torch: torch?.texts_per_cpu_s };
      infer[p] = { ours, pytorch: torch };
      process.stderr.write(`  ${p}: ${JSON.stringify(infer[p])}\n`); // partial results, in case the run is cut short
      if (torch) results.torch = torch.torch;
    }
    rows.push(img, txt);
    cpuRows.push(imgC, txtC);
    results.infer = infer;
  }
  if (only.has('train')) {
    const train: Record<string, unknown> = {};
    const row: BenchRow = { name: 'distill step pairs/s', unit: 'pair/s' };
    const rowC: BenchRow = { name: 'distill step pairs/CPU-s', unit: 'pair' };
    for (const p of precisions) {
      process.stderr.write(
        `bench train ${p}: distillation step, half-width vit-b-32 student vs full teacher, ` +
          `batch ${batch}, ${threads} threads …\n`,
      );
      const ours = benchTrain(rtOf(p), { batch, iters });
      const torch = python<{ pairs_per_s: number; pairs_per_cpu_s: number; torch: string }>('torch_train_bench.py', [
        '--precision',
        p,
        ...py,
      ]);
      row[p] = { ours: ours.pairs_per_s, torch: torch?.pairs_per_s };
      rowC[p] = { ours: ours.pairs_per_cpu_s, torch: torch?.pairs_per_cpu_s };
      train[p] = { ours, pytorch: torch };
      process.stderr.write(`  ${p}: ${JSON.stringify(train[p])}\n`);
    }
    rows.push(row);
    cpuRows.push(rowC);
    results.train = train;
  }
  if (rows.length > 0) {
    console.log(`CPU: ${cpu}; oneDNN ISA ${isa}, bf16 matmul ${impl ?? 'none'}; PyTorch ${results.torch ?? 'n/a'}`);
    console.log(
      `${geometry} (distill: half-width student, full teacher), batch ${batch}, ${threads} threads, ` +
        `best of ${iters} after a warm-up; PyTorch bf16 = torch.autocast("cpu", torch.bfloat16)`,
    );
    console.log(formatBenchTable(rows));
    console.log('\nPer CPU-second (user + system time of all threads; barely moves when other work shares the cores):');
    console.log(formatBenchTable(cpuRows));
  }
  const rt32 = rtOf('fp32');
  if (only.has('eval')) {
    process.stderr.write(`bench eval: ${geometry}, ${4 * batch} PNG images …\n`);
    const w = arg('workers', '');
    const workers = w === '' ? undefined : Number(w);
    if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0 && workers <= 64))
      throw new Error(`bench: --workers expects an integer in [0, 64], found "${w}"`);
    const r = await benchEval(rt32, initClipModel(geometry, 0), 4 * batch, batch, workers);
    console.log(
      `eval images/s (decode+preprocess+forward, fp32, ${r.workers} decode workers) ` +
        `${r.eval_images_per_s.toFixed(2)}   raw forward ` +
        `${r.forward_images_per_s.toFixed(2)}   eval/forward ${r.ratio.toFixed(2)}`,
    );
    results.eval = r;
  }
  if (only.has('score')) {
    process.stderr.write(`bench score: MoPE fast vs naive path, ${geometry} …\n`);
    const r = benchScore(rt32, initClipModel(geometry, 0), { n: 8 });
    console.log(
      `MoPE scoring (${r.modules} vision heads, ${r.n} pairs, fp32): fast ${r.fast_s.toFixed(1)} s, naive ` +
        `${r.naive_s.toFixed(1)} s, speed-up ${r.speedup_wall.toFixed(2)}× wall, ` +
        `${(r.naive_layer_forwards / r.layer_forwards).toFixed(2)}× layer-forwards (full vision run ` +
        `${r.full_run_forward_ratio.toFixed(2)}×), max |Δmope| ${r.max_abs_mope_diff}`,
    );
    results.score = r;
  }
  console.log(JSON.stringify(results));
}

await main();
