// The process group of a data-parallel run: rank, size and the few collectives training needs (sum all-reduce,
// equal-size all-gather, broadcast, barrier), over Float32Array buffers. A single process is a World of size 1
// whose collectives are identities; a process started by mpirun / srun (seen from the launcher's environment)
// loads the separate MPI addon build/Release/mope_mpi.node, so a plain `node` never loads libmpi. Every collective
// gives up after MOPE_MPI_TIMEOUT_S seconds (default 300) with a DistError instead of waiting on a dead peer.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../engine/native.ts';
import { ConfigError, DistError } from '../errors.ts';

export interface World {
  readonly rank: number;
  readonly size: number;
  /** buf ← Σ over ranks of buf, in place. */
  allreduceSum(buf: Float32Array): void;
  /** Every rank's `send` (all of the same length n), rank r's at [r·n, (r+1)·n) of the result. */
  allgather(send: Float32Array): Float32Array;
  /** buf ← rank root's buf on every rank. */
  broadcast(buf: Float32Array, root?: number): void;
  /** Waits for every rank (at most timeoutS seconds, default the collective timeout). */
  barrier(timeoutS?: number): void;
  /** Ends every rank of the job with this exit code. */
  abort(code: number): never;
  /** Leaves the group (call once, at the end). */
  finalize(): void;
}

/** The World of a process that runs alone. */
export const SINGLE_WORLD: World = Object.freeze({
  rank: 0,
  size: 1,
  allreduceSum: () => {},
  allgather: (send: Float32Array) => Float32Array.from(send),
  broadcast: () => {},
  barrier: () => {},
  abort: (code: number): never => process.exit(code),
  finalize: () => {},
});

/** Variables that mpirun (Open MPI, MPICH/Hydra) or srun --mpi=pmix/pmi2 set in every rank's environment. */
export const LAUNCHER_VARS = ['OMPI_COMM_WORLD_SIZE', 'PMIX_RANK', 'PMI_SIZE', 'PMI_RANK'] as const;

export const DEFAULT_TIMEOUT_S = 300;

/** Whether this process was started by an MPI launcher. */
export function launchedUnderMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return LAUNCHER_VARS.some((v) => env[v] !== undefined && env[v] !== '');
}

/** MOPE_MPI_TIMEOUT_S as seconds (default DEFAULT_TIMEOUT_S). */
export function collectiveTimeout(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.MOPE_MPI_TIMEOUT_S;
  if (v === undefined || v === '') return DEFAULT_TIMEOUT_S;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new ConfigError(`MOPE_MPI_TIMEOUT_S expects a number of seconds > 0, found "${v}".`);
  return n;
}

interface MpiAddon {
  init(): { rank: number; size: number };
  allreduceSum(buf: Float32Array, timeoutS: number): void;
  allgather(send: Float32Array, recv: Float32Array, timeoutS: number): void;
  broadcast(buf: Float32Array, root: number, timeoutS: number): void;
  barrier(timeoutS: number): void;
  abort(code: number): void;
  finalize(): void;
}

class MpiWorld implements World {
  private done = false;
  constructor(
    private readonly mpi: MpiAddon,
    readonly rank: number,
    readonly size: number,
    private readonly timeoutS: number,
  ) {}

  private call<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw new DistError(`${(e as Error).message}`);
    }
  }

  allreduceSum(buf: Float32Array): void {
    this.call(() => this.mpi.allreduceSum(buf, this.timeoutS));
  }

  allgather(send: Float32Array): Float32Array {
    const recv = new Float32Array(send.length * this.size);
    this.call(() => this.mpi.allgather(send, recv, this.timeoutS));
    return recv;
  }

  broadcast(buf: Float32Array, root = 0): void {
    this.call(() => this.mpi.broadcast(buf, root, this.timeoutS));
  }

  barrier(timeoutS = this.timeoutS): void {
    this.call(() => this.mpi.barrier(timeoutS));
  }

  abort(code: number): never {
    this.mpi.abort(code);
    process.exit(code);
  }

  finalize(): void {
    if (this.done) return;
    this.done = true;
    this.mpi.finalize();
  }
}

/**
 * The World of this process: SINGLE_WORLD unless an MPI launcher started it, else the MPI group (MPI_Init here).
 * Throws DistError when the MPI addon is missing or MPI cannot start.
 */
export function openWorld(env: NodeJS.ProcessEnv = process.env): World {
  if (!launchedUnderMpi(env)) return SINGLE_WORLD;
  const timeoutS = collectiveTimeout(env);
  const root = packageRoot();
  const file = join(root, 'build', 'Release', 'mope_mpi.node');
  if (!existsSync(file)) {
    throw new DistError(
      `started by an MPI launcher but ${file} is missing: install libopenmpi-dev (mpicc) and rebuild with ` +
        `\`npm run build:native\` in ${root}.`,
    );
  }
  let mpi: MpiAddon;
  try {
    mpi = createRequire(import.meta.url)(file) as MpiAddon;
  } catch (e) {
    throw new DistError(`could not load ${file} (${(e as Error).message}); rebuild it with \`npm run build:native\`.`);
  }
  let w: { rank: number; size: number };
  try {
    w = mpi.init();
  } catch (e) {
    throw new DistError(`MPI could not start: ${(e as Error).message}`);
  }
  return new MpiWorld(mpi, w.rank, w.size, timeoutS);
}
