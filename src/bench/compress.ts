// `mope-clip bench --mode compress`: a reduced real-size compression anyone can rerun. A random-weight model of a
// standard geometry (default ViT-B/32) goes through the whole `compress --stage finetune --tower vision` pipeline
// (width to 50 %, two layers fewer, short distillation, evaluation on builtin data) with few calibration pairs, few
// steps and small eval subsets; per stage it reports wall time and peak resident memory (Linux: VmHWM of
// /proc/self/status, reset at each stage start through /proc/self/clear_refs; elsewhere the process peak so far).
// The pipeline itself is passed in by the command (a benchmark does not import the pipeline layer).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GEOMETRIES, type GeometryName } from '../model/init.ts';
import { initFolder } from '../train/init-folder.ts';

export interface CompressBenchSettings {
  geometry: GeometryName;
  /** Calibration pairs for MoPE scoring. */
  calib: number;
  /** Distillation steps per distil stage, of `batch` pairs. */
  steps: number;
  batch: number;
  /** Items of each eval set. */
  evalLimit: number;
  /** FFN neurons per scored group. */
  ffnGroupSize: number;
  seed: number;
  /** Run folder (default: a temporary folder, removed afterwards). */
  out?: string;
}

/** What the command runs: the compress pipeline on `model` with these settings, telling stage starts and ends. */
export type CompressRunner = (a: {
  model: string;
  out: string;
  calibLimit: number;
  steps: number;
  batch: number;
  evalLimit: number;
  keepLayers: number;
  ffnGroupSize: number;
  seed: number;
  onStage: (name: string, phase: 'start' | 'end') => void;
}) => Promise<unknown>;

export interface StageFigure {
  name: string;
  seconds: number;
  /** Peak resident memory during the stage, MiB. */
  peak_rss_mib: number;
}

export interface CompressBench {
  mode: 'compress';
  geometry: GeometryName;
  parameters: number;
  calib_pairs: number;
  steps: number;
  batch: number;
  eval_limit: number;
  ffn_group_size: number;
  keep_layers: number;
  cpu: string;
  stages: StageFigure[];
  /** Model folder written before the pipeline. */
  init_seconds: number;
  total_seconds: number;
  /** Peak resident memory of the whole process, MiB. */
  peak_rss_mib: number;
}

const MiB = 2 ** 20;

/** Peak RSS since the last reset, bytes (VmHWM), or the process peak where /proc is absent. */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Resets the peak to the current RSS (Linux); false where it cannot. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export async function benchCompress(
  s: CompressBenchSettings,
  run: CompressRunner,
  log?: (m: string) => void,
): Promise<CompressBench> {
  const g = GEOMETRIES[s.geometry];
  const keepLayers = Math.max(1, g.vision.layers - 2);
  const own = s.out === undefined;
  const dir = s.out ?? mkdtempSync(join(tmpdir(), 'mope-bench-compress-'));
  const stages: StageFigure[] = [];
  let processPeak = 0,
    t = 0;
  try {
    const t0 = performance.now();
    const plan = initFolder(g, s.seed, join(dir, 'model'), { force: true });
    const initSeconds = (performance.now() - t0) / 1000;
    log?.(`bench compress: ${s.geometry} (${(plan.parameters / 1e6).toFixed(1)} M parameters) in ${dir}`);
    const onStage = (name: string, phase: 'start' | 'end') => {
      if (phase === 'start') {
        processPeak = Math.max(processPeak, peakRssBytes());
        resetPeakRss();
        t = performance.now();
        return;
      }
      const peak = peakRssBytes();
      processPeak = Math.max(processPeak, peak);
      stages.push({ name, seconds: (performance.now() - t) / 1000, peak_rss_mib: Math.round(peak / MiB) });
      log?.(`  ${name}: ${((performance.now() - t) / 1000).toFixed(1)} s, peak ${(peak / MiB).toFixed(0)} MiB`);
    };
    await run({
      model: join(dir, 'model'),
      out: join(dir, 'run'),
      calibLimit: s.calib,
      steps: s.steps,
      batch: s.batch,
      evalLimit: s.evalLimit,
      keepLayers,
      ffnGroupSize: s.ffnGroupSize,
      seed: s.seed,
      onStage,
    });
    processPeak = Math.max(processPeak, peakRssBytes(), process.resourceUsage().maxRSS * 1024);
    return {
      mode: 'compress',
      geometry: s.geometry,
      parameters: plan.parameters,
      calib_pairs: s.calib,
      steps: s.steps,
      batch: s.batch,
      eval_limit: s.evalLimit,
      ffn_group_size: s.ffnGroupSize,
      keep_layers: keepLayers,
      cpu: cpus()[0]?.model ?? 'unknown',
      stages,
      init_seconds: initSeconds,
      total_seconds: (performance.now() - t0) / 1000,
      peak_rss_mib: Math.round(processPeak / MiB),
    };
  } finally {
    if (own) rmSync(dir, { recursive: true, force: true });
  }
}
