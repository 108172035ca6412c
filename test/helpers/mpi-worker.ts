// Test worker for test/mpi.test.ts, started by `mpirun -np N node --import tsx test/helpers/mpi-worker.ts JOBS`
// (or alone): runs each job of the JSON list JOBS through trainLoop in this process's World, in order. The same
// job description builds the reference run in the test process (mpiJobOptions), so both see the same model,
// teacher, data and optimiser. Fault injection: `killRank`/`killAfter` SIGKILLs that rank after that step;
// `failRank` throws a ConfigError on that rank at step 1;
// `hangRank` blocks that rank for a minute at step 1.
import { pairsFromArray, type PairsDataset } from '../../src/data/dataset.ts';
import { Rng } from '../../src/model/rng.ts';
import { loadNativeKernels } from '../../src/engine/native.ts';
import { silentLogger, type Runtime } from '../../src/engine/runtime.ts';
import { ConfigError } from '../../src/errors.ts';
import { GEOMETRIES } from '../../src/model/init.ts';
import { initModelFiles } from '../../src/train/init-geometry.ts';
import { trainLoop, type TrainLoopOptions } from '../../src/train/loop.ts';
import { rankRuntime, withWorld } from '../../src/parallel/launch.ts';
import type { World } from '../../src/parallel/world.ts';

export interface MpiJob {
  out: string;
  distill: boolean;
  optimizer: 'sgd' | 'adamw';
  steps: number;
  batch: number;
  saveEvery?: number;
  resume?: boolean;
  killRank?: number;
  killAfter?: number;
  failRank?: number;
  /** This rank blocks (without calling MPI) for a minute at step 1: the others must time out. */
  hangRank?: number;
}

const WORDS = [
  'red',
  'shirt',
  'blue',
  'shoe',
  'bag',
  'on',
  'a',
  'white',
  'table',
  'small',
  'dress',
  'near',
  'green',
  'coat',
];

/** n seeded random 32×32 RGB images, captions of 2–9 words (every third item has two, so the caption draw matters). */
export function syntheticPairs(n: number): PairsDataset {
  const rng = new Rng('mpi-test-data');
  const words = () => Array.from({ length: 2 + rng.int(8) }, () => WORDS[rng.int(WORDS.length)]!).join(' ');
  const items = Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(32 * 32 * 3);
    for (let k = 0; k < data.length; k++) data[k] = rng.int(256);
    const captions = i % 3 === 0 ? [words(), words()] : [words()];
    return { image: { kind: 'rgb' as const, data, width: 32, height: 32 }, captions, ref: `synthetic[${i}]` };
  });
  return pairsFromArray('test:synthetic', items);
}

/** trainLoop options of a job (a fresh seeded student; for distillation a differently seeded teacher of the same shape). */
export function mpiJobOptions(job: MpiJob, world?: World): TrainLoopOptions {
  const data = syntheticPairs(2 * job.batch);
  return {
    student: initModelFiles(GEOMETRIES.tiny, 0),
    teacher: job.distill ? initModelFiles(GEOMETRIES.tiny, 7).model : null,
    data,
    batch: job.batch,
    steps: job.steps,
    seed: 3,
    out: job.out,
    saveEvery: job.saveEvery ?? 0,
    resume: job.resume,
    optim:
      job.optimizer === 'sgd'
        ? { optimizer: 'sgd', lr: 0.5, weightDecay: 0 }
        : { optimizer: 'adamw', lr: 1e-4, weightDecay: 0.1 },
    // all four terms, with weights of similar effect on the tiny model
    loss: job.distill ? { wCon: 1, wKd: 1, wEmb: 1, wHid: 1 } : undefined,
    world,
    onStep: (r) => {
      if (world && world.rank === job.killRank && r.step === job.killAfter) process.kill(process.pid, 'SIGKILL');
      if (world && world.rank === job.hangRank) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      if (world && world.rank === job.failRank)
        throw new ConfigError(`injected failure on rank ${world.rank} at step ${r.step}`);
    },
  };
}

export function workerRuntime(): Runtime {
  const kernels = loadNativeKernels();
  kernels.setThreads(1);
  return { kernels, threads: 1, seed: 0, log: silentLogger };
}

if (process.argv[1]?.endsWith('mpi-worker.ts')) {
  const jobs = JSON.parse(process.argv[2]!) as MpiJob[];
  await withWorld(async (world) => {
    const rt = rankRuntime(workerRuntime(), world);
    for (const job of jobs) {
      const r = await trainLoop(rt, mpiJobOptions(job, world));
      if (world.rank === 0)
        process.stdout.write(
          JSON.stringify({ out: job.out, steps: r.steps, world_size: r.worldSize, batch_per_rank: r.rankBatch }) + '\n',
        );
    }
  });
}
