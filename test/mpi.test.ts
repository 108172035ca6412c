// Data-parallel training under `mpirun -np 2` (1 thread per rank) against one process with the same global batch:
// one SGD step and three AdamW steps with batch 32 give the same weights (max relative difference ≤ 1e-5) for
// contrastive training and for distillation with all four loss terms; a rank killed mid-run followed by --resume
// (with 2 ranks, and with 1) reproduces the uninterrupted run; an error or a hang on one rank ends both ranks with
// one clear message. Skipped only where mpirun is not installed. Dims: tiny (text C 32, vision C 48, E 24).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import type { ClipModel } from '../src/model/types.ts';
import { initModelFiles } from '../src/train/init-geometry.ts';
import { GEOMETRIES } from '../src/model/init.ts';
import { trainLoop } from '../src/train/loop.ts';
import { mpiJobOptions, workerRuntime, type MpiJob } from './helpers/mpi-worker.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

const MPIRUN = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
const skip =
  MPIRUN.error || MPIRUN.status !== 0 ? 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)' : false;
const WORKER = join(import.meta.dirname, 'helpers', 'mpi-worker.ts');
const rt = workerRuntime();

interface Launch {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** mpirun -np n over the worker with these jobs. */
function mpirun(n: number, jobs: MpiJob[], env: Record<string, string> = {}): Promise<Launch> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(
      'mpirun',
      [
        '-np',
        String(n),
        '--oversubscribe',
        '--bind-to',
        'none',
        process.execPath,
        '--import',
        'tsx',
        WORKER,
        JSON.stringify(jobs),
      ],
      {
        env: {
          ...process.env,
          OMPI_ALLOW_RUN_AS_ROOT: '1',
          OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
          MOPE_THREADS: '1',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '',
      stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const kill = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/**
 * Max relative difference of a from b: max|a − b| / max|b| over all weights (`model`), and the largest of the same
 * ratio per tensor (`tensor`, reported only: for tensors that start at zero, such as biases, a few AdamW steps make
 * it the ratio of rounding noise to lr-sized values, the same between 1 and 2 threads of one process).
 */
function relDiff(a: ClipModel, b: ClipModel): { model: number; tensor: number } {
  const sb = toStateDict(b);
  let D = 0,
    M = 0,
    tensor = 0;
  for (const [k, t] of toStateDict(a)) {
    const u = sb.get(k)!.data;
    let d = 0,
      m = 0;
    for (let i = 0; i < u.length; i++) {
      d = Math.max(d, Math.abs(t.data[i]! - u[i]!));
      m = Math.max(m, Math.abs(u[i]!));
    }
    if (m > 0) tensor = Math.max(tensor, d / m);
    D = Math.max(D, d);
    M = Math.max(M, m);
  }
  return { model: D / M, tensor };
}

const fmt = (r: { model: number; tensor: number }) =>
  `${r.model.toExponential(2)} (per tensor ${r.tensor.toExponential(2)})`;

async function reference(job: MpiJob): Promise<ClipModel> {
  await trainLoop(rt, mpiJobOptions(job));
  return loadCheckpoint(job.out);
}

test('data parallel under mpirun -np 2', { skip }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const kinds = [
    [false, 'sgd', 1],
    [false, 'adamw', 3],
    [true, 'sgd', 1],
    [true, 'adamw', 3],
  ] as const;
  const jobs = (side: string): MpiJob[] =>
    kinds.map(([distill, optimizer, steps]) => ({
      out: join(dir, `${side}-${distill ? 'distill' : 'train'}-${optimizer}`),
      distill,
      optimizer,
      steps,
      batch: 32,
    }));
  const killJob = (out: string, extra: Partial<MpiJob> = {}): MpiJob => ({
    out: join(dir, out),
    distill: true,
    optimizer: 'adamw',
    steps: 4,
    batch: 32,
    saveEvery: 1,
    ...extra,
  });
  // one launch: the four equivalence runs, then a run whose rank 1 is killed after its step 2
  const run = await mpirun(2, [...jobs('mpi'), killJob('killed', { killRank: 1, killAfter: 2 })]);
  t.diagnostic(`launch with the kill: exit ${run.code}, ${run.seconds.toFixed(1)} s`);

  await t.test(
    '1 SGD step and 3 AdamW steps equal one process with batch 32 (train L_con; distill, 4 terms)',
    async () => {
      const lines = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { world_size: number; batch_per_rank: number });
      assert.equal(lines.length, 4, run.stderr);
      for (const l of lines) assert.deepEqual([l.world_size, l.batch_per_rank], [2, 16]);
      const init = initModelFiles(GEOMETRIES.tiny, 0).model;
      const refs = jobs('one');
      for (const [i, job] of jobs('mpi').entries()) {
        const ref = await reference(refs[i]!),
          got = loadCheckpoint(job.out);
        const rel = relDiff(got, ref),
          moved = relDiff(ref, init).tensor;
        t.diagnostic(`${kinds[i]!.join(' ')}: max relative difference ${fmt(rel)}; update ${moved.toExponential(2)}`);
        assert.ok(moved > 1e-3, `the ${job.out} run must move the weights (moved ${moved})`);
        assert.ok(rel.model <= 1e-5, `${job.out}: 2 ranks differ from 1 process by ${rel.model}`);
      }
    },
  );

  await t.test(
    'a rank killed after step 2, then --resume with 2 ranks or with 1, reproduces the uninterrupted run',
    async () => {
      assert.notEqual(run.code, 0, 'the killed run must fail');
      cpSync(join(dir, 'killed'), join(dir, 'killed1'), { recursive: true });
      const resumed = await mpirun(2, [killJob('killed', { resume: true })]);
      assert.equal(resumed.code, 0, resumed.stderr);
      await trainLoop(rt, mpiJobOptions(killJob('killed1', { resume: true })));
      const ref = await reference(killJob('straight'));
      for (const out of ['killed', 'killed1']) {
        const rel = relDiff(loadCheckpoint(join(dir, out)), ref);
        t.diagnostic(
          `${out === 'killed' ? '2' : '1'}-rank resume vs uninterrupted: max relative difference ${fmt(rel)}`,
        );
        assert.ok(rel.model <= 1e-5, `${out}: ${rel.model}`);
      }
    },
  );

  await t.test('an error or a hang on one rank ends both ranks with one clear message', async () => {
    const job = (extra: Partial<MpiJob>): MpiJob => ({
      out: join(dir, 'x'),
      distill: false,
      optimizer: 'sgd',
      steps: 3,
      batch: 8,
      ...extra,
    });
    const failed = await mpirun(2, [job({ failRank: 1 })]);
    assert.equal(failed.code, 1, failed.stderr);
    const said = failed.stderr.split('\n').filter((l) => l.startsWith('mope-clip: '));
    assert.deepEqual(said, ['mope-clip: rank 1 of 2: injected failure on rank 1 at step 1'], failed.stderr);
    const hung = await mpirun(2, [job({ hangRank: 1, out: join(dir, 'y') })], { MOPE_MPI_TIMEOUT_S: '3' });
    t.diagnostic(`hang: exit ${hung.code} after ${hung.seconds.toFixed(1)} s`);
    assert.notEqual(hung.code, 0);
    assert.ok(hung.seconds < 50, `the job should end after the 3 s timeout, took ${hung.seconds} s`);
    assert.match(
      hung.stderr,
      /mope-clip: rank 0 of 2: mpi\.allgather: rank 0: no answer from the other ranks within 3 s/,
    );
  });
});
