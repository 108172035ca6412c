// Kernel breakdown of a ViT-B/32 forward (inference, both towers), of a training forward+backward (contrastive,
// both towers, plus the optimiser step) and of the distillation step `bench --mode train` times, at fp32 and/or
// bf16: every Kernels call is timed by name, so linear (GEMM; in bf16 with its fp32→bf16 conversion of the
// activations), attention, layernorm, activation and the rest each get their share of the wall time. A tool for
// finding bottlenecks, not a test.
// Usage: node --import tsx src/bench/profile.ts [--batch 8] [--threads 2] [--precision fp32,bf16] [--geometry vit-b-32]
import { loadKernels, loadNativeKernels } from '../engine/native.ts';
import type { Kernels } from '../engine/kernels.ts';
import type { Precision } from '../engine/precision.ts';
import { resolveThreads, stderrLogger, type Runtime } from '../engine/runtime.ts';
import { createGrads, paramList, zeroGrads } from '../model/grads.ts';
import { initClipModel, type GeometryName } from '../model/init.ts';
import { textForward, visionForward } from '../model/forward.ts';
import { Optimizer } from '../train/optim.ts';
import { TrainStep, accumulateStep } from '../train/step.ts';
import { halfWidthB32, randomBatch } from './train.ts';

export interface KernelTimes {
  /** Wall seconds, CPU seconds (user + system, all threads) and calls per kernel name. */
  byKernel: Map<string, { s: number; cpu: number; calls: number }>;
}

/** Kernels whose every function records its wall time into t (one level: what the model code calls). */
export function timedKernels(k: Kernels, t: KernelTimes): Kernels {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(k)) {
    if (typeof fn !== 'function') {
      out[name] = fn;
      continue;
    }
    out[name] = (...args: unknown[]) => {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const r = (fn as (...a: unknown[]) => unknown).apply(k, args);
      const e = t.byKernel.get(name) ?? { s: 0, cpu: 0, calls: 0 };
      e.s += Number(process.hrtime.bigint() - t0) / 1e9;
      const c = process.cpuUsage(c0);
      e.cpu += (c.user + c.system) / 1e6;
      e.calls++;
      t.byKernel.set(name, e);
      return r;
    };
  }
  return out as unknown as Kernels;
}

/**
 * Table of kernel, calls, wall and CPU seconds and their shares of the whole (`wall`, `cpu`), largest CPU share
 * first; the last row is the time outside kernels (TypeScript code, allocation, copies).
 */
export function formatKernelTimes(t: KernelTimes, wall: number, cpu: number): string {
  const rows = [...t.byKernel].sort((a, b) => b[1].cpu - a[1].cpu);
  const inW = rows.reduce((s, [, e]) => s + e.s, 0),
    inC = rows.reduce((s, [, e]) => s + e.cpu, 0);
  const f = (x: number, w: number) => x.toFixed(3).padStart(w);
  const pc = (x: number, of: number) => `${((100 * x) / of).toFixed(1).padStart(5)} %`;
  const line = (n: string, calls: string, s: number, c: number) =>
    `| ${n.padEnd(20)} | ${calls.padStart(6)} | ${f(s, 8)} | ${pc(s, wall)} | ${f(c, 8)} | ${pc(c, cpu)} |`;
  return [
    `| ${'kernel'.padEnd(20)} | ${'calls'.padStart(6)} | ${'wall s'.padStart(8)} | ${'share'.padStart(7)} | ` +
      `${'CPU s'.padStart(8)} | ${'share'.padStart(7)} |`,
    `|${'-'.repeat(22)}|-------:|---------:|--------:|---------:|--------:|`,
    ...rows.map(([n, e]) => line(n, String(e.calls), e.s, e.cpu)),
    line('(outside kernels)', '', wall - inW, cpu - inC),
  ].join('\n');
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

function profile(p: Precision, geometry: GeometryName, B: number, threads: number): void {
  const base: Runtime = { kernels: loadKernels(p), threads, seed: 0, log: stderrLogger, precision: p };
  const model = initClipModel(geometry, 0);
  const batch = randomBatch(1, B, 77, model.config.vision.imageSize);
  const t: KernelTimes = { byKernel: new Map() };
  const rt: Runtime = { ...base, kernels: timedKernels(base.kernels, t) };
  const run = (what: string, fn: () => void): void => {
    fn(); // warm-up: packs weights, sizes workspaces and tapes, touches the optimiser's moments
    t.byKernel.clear();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0),
      cpu = (c.user + c.system) / 1e6;
    console.log(
      `\n${what}, ${p}, ${geometry}, batch ${B}, ${threads} threads: ${wall.toFixed(3)} s wall, ` +
        `${cpu.toFixed(3)} CPU-s\n`,
    );
    console.log(formatKernelTimes(t, wall, cpu));
  };
  run('inference forward (image + text tower)', () => {
    visionForward(rt, model, batch.pixels, B);
    textForward(rt, model, batch.ids, B, 77);
  });
  const grads = createGrads(model.config);
  const step = new TrainStep(rt, { student: model, grads });
  const opt = new Optimizer(rt, paramList(model, grads), { lr: 1e-5 });
  run('training step (forward + backward of both towers, contrastive loss, AdamW)', () => {
    accumulateStep(step, opt, [batch], () => zeroGrads(model.config, grads));
  });
  // The distillation step `bench --mode train` times: half-width student, full frozen teacher, all four losses.
  const student = initClipModel(halfWidthB32(), 2);
  const sGrads = createGrads(student.config);
  const dStep = new TrainStep(rt, { student, grads: sGrads, teacher: model });
  const dOpt = new Optimizer(rt, paramList(student, sGrads), { lr: 1e-5 });
  run('distillation step (half-width student forward + backward, full teacher forward, AdamW)', () => {
    accumulateStep(dStep, dOpt, [batch], () => zeroGrads(student.config, sGrads));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const threads = resolveThreads(Number(arg('threads', '2')));
  loadNativeKernels().setThreads(threads);
  for (const p of arg('precision', 'fp32,bf16').split(',') as Precision[]) {
    profile(p, arg('geometry', 'vit-b-32') as GeometryName, Number(arg('batch', '8')), threads);
  }
}
