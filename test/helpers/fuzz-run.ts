// Runs fuzz cases and classifies each outcome against the CLI contract: exit 0 success, 1 user error, 2 usage error;
// never 3 (internal), a signal, a hang, a stack trace in stderr, or a success on a known-bad input.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FuzzCase } from './fuzz-cases.ts';

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const BIN = join(root, 'bin', 'mope-clip.mjs');
const WORKER = join(root, 'test', 'helpers', 'fuzz-worker.ts');

export type Outcome =
  | 'exit0'
  | 'exit1'
  | 'exit2'
  | 'wrong-success'
  | 'wrong-code'
  | 'exit3'
  | 'stack'
  | 'bad-stdout'
  | 'signal'
  | 'timeout';
export const OUTCOMES: readonly Outcome[] = [
  'exit0',
  'exit1',
  'exit2',
  'wrong-success',
  'wrong-code',
  'exit3',
  'stack',
  'bad-stdout',
  'signal',
  'timeout',
];
export const PASSING: ReadonlySet<Outcome> = new Set(['exit0', 'exit1', 'exit2']);

export interface Result {
  id: string;
  code: number | null;
  signal?: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut?: boolean;
}

/** True when stdout of a successful run holds a non-finite number or is not the JSON it should be. */
function badStdout(c: FuzzCase, stdout: string): boolean {
  const cmd = c.args[0];
  if (cmd !== 'embed' && cmd !== 'tokenize' && cmd !== 'eval' && cmd !== 'prune')
    return /\b(NaN|null)\b/.test(stdout) && cmd !== 'info';
  if (stdout.trim() === '') return false; // written to --out
  try {
    const v = JSON.parse(stdout);
    const walk = (x: unknown): boolean =>
      x === null
        ? true
        : Array.isArray(x)
          ? x.some(walk)
          : typeof x === 'object'
            ? Object.values(x as object).some(walk)
            : false;
    return cmd === 'embed' || cmd === 'tokenize' ? walk(v) : false;
  } catch {
    return true;
  }
}

export function classify(c: FuzzCase, r: Result): Outcome {
  if (r.timedOut) return 'timeout';
  if (r.signal || r.code === null || r.code < 0) return 'signal';
  if (/\n\s+at .+\(.+:\d+:\d+\)/.test(r.stderr) || /internal error/.test(r.stderr))
    return r.code === 3 ? 'exit3' : 'stack';
  if (r.code === 3 || r.code > 3) return 'exit3';
  if (r.code === 0 && c.expect) return 'wrong-success';
  if (c.expect === 'usage' && r.code !== 2) return 'wrong-code';
  if (r.code === 0 && badStdout(c, r.stdout)) return 'bad-stdout';
  return `exit${r.code}` as Outcome;
}

function spawnOne(c: FuzzCase, timeoutMs: number): Promise<Result> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [BIN, ...c.args], {
      env: { ...process.env, MOPE_THREADS: '1', ...c.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '',
      err = '',
      timedOut = false;
    p.stdout.on('data', (d) => {
      if (out.length < 20000) out += d;
    });
    p.stderr.on('data', (d) => {
      if (err.length < 4000) err += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        id: c.id,
        code,
        signal: timedOut ? null : signal,
        stdout: out,
        stderr: err,
        ms: Date.now() - t0,
        timedOut,
      });
    });
  });
}

function runWorker(cases: FuzzCase[], dir: string, n: number, timeoutMs: number): Promise<Result[]> {
  const casesFile = join(dir, `worker-${n}.json`),
    outFile = join(dir, `worker-${n}.jsonl`);
  writeFileSync(casesFile, JSON.stringify(cases));
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', WORKER, casesFile, outFile], {
      env: { ...process.env, MOPE_THREADS: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => {
      if (err.length < 4000) err += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      let text = '';
      try {
        text = readFileSync(outFile, 'utf8');
      } catch {
        /* the run's folder is gone (test ended) */
      }
      const done = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Result);
      const seen = new Set(done.map((d) => d.id));
      // A case that killed or hung the worker is charged with it; cases after it are rerun alone by the caller.
      const missing = cases.filter((c) => !seen.has(c.id));
      if (missing.length > 0)
        done.push({
          id: missing[0]!.id,
          code: null,
          signal: signal ?? `worker exit ${code}`,
          stdout: '',
          stderr: err,
          ms: 0,
          timedOut: signal === 'SIGKILL',
        });
      resolve(done);
    });
  });
}

/**
 * Runs all cases: isolated ones through the real bin (2 at a time; at most `spawn` of them, default all), the rest
 * in `workers` in-process workers (a case that hangs or kills its worker is charged with it).
 */
export async function runCases(
  cases: FuzzCase[],
  dir: string,
  opts: { workers?: number; timeoutMs?: number; spawn?: number } = {},
): Promise<Map<string, Result>> {
  const results = new Map<string, Result>();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const iso = cases.filter((c) => c.isolate).slice(0, opts.spawn ?? Infinity);
  let pending = cases.filter((c) => !iso.includes(c));
  const isoRun = (async () => {
    const queue = [...iso];
    await Promise.all(
      [0, 1].map(async () => {
        for (let c = queue.shift(); c; c = queue.shift()) results.set(c.id, await spawnOne(c, timeoutMs));
      }),
    );
  })();
  let round = 0;
  while (pending.length > 0) {
    const w = Math.max(1, Math.min(opts.workers ?? 2, pending.length));
    const parts = Array.from({ length: w }, (_, i) => pending.filter((_, j) => j % w === i));
    const out = (
      await Promise.all(parts.map((p, i) => runWorker(p, dir, round * 10 + i, timeoutMs * 4 + p.length * 2000)))
    ).flat();
    for (const r of out) results.set(r.id, r);
    pending = pending.filter((c) => !results.has(c.id));
    round++;
  }
  await isoRun;
  return results;
}

export function table(cases: FuzzCase[], results: Map<string, Result>, families: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const c of cases) {
    const o = classify(c, results.get(c.id)!);
    counts.set(`${c.family}/${o}`, (counts.get(`${c.family}/${o}`) ?? 0) + 1);
  }
  const used = OUTCOMES.filter((o) => families.some((f) => counts.has(`${f}/${o}`)));
  const lines = [`| family | ${used.join(' | ')} | total |`, `|---|${used.map(() => '---:').join('|')}|---:|`];
  for (const f of [...families, 'all']) {
    const row = used.map((o) =>
      f === 'all' ? families.reduce((s, g) => s + (counts.get(`${g}/${o}`) ?? 0), 0) : (counts.get(`${f}/${o}`) ?? 0),
    );
    lines.push(`| ${f} | ${row.join(' | ')} | ${row.reduce((a, b) => a + b, 0)} |`);
  }
  return lines.join('\n');
}
