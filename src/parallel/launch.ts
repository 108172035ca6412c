// Running a command inside the process group: opens the World (MPI only under an MPI launcher), quiets the
// progress lines of ranks other than 0, and turns an error on any rank into one message and an MPI abort that
// ends every rank (instead of the others waiting on a collective). A plain process behaves as before: errors
// propagate to the CLI's own handler.
import { isUserError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import { openWorld, SINGLE_WORLD, type World } from './world.ts';

/** rt for this rank: ranks > 0 keep warnings but drop progress lines. */
export function rankRuntime(rt: Runtime, world: World): Runtime {
  if (world.rank === 0) return rt;
  return { ...rt, log: { info: () => {}, warn: (m) => rt.log.warn(`rank ${world.rank}: ${m}`) } };
}

/** Exit code of an error: 1 for a user error (MopeError), 3 for an internal one, as the CLI. */
export function exitCode(e: unknown): number {
  return isUserError(e) ? 1 : 3;
}

/**
 * Runs fn with this process's World. Under MPI: success waits for every rank (barrier) and finalizes; an error on
 * this rank prints `mope-clip: rank R of N: message` and aborts the job with exit code 1 (user error) or 3.
 */
export async function withWorld<T>(fn: (world: World) => Promise<T>, open: () => World = openWorld): Promise<T> {
  const world: World = open();
  if (world === SINGLE_WORLD) return fn(world);
  let r: T;
  try {
    r = await fn(world);
    world.barrier();
  } catch (e) {
    const err = e as Error;
    const detail = isUserError(e)
      ? err.message
      : `internal error: ${err?.message ?? String(e)}${process.env.MOPE_DEBUG ? `\n${err?.stack ?? ''}` : ''}`;
    process.stderr.write(`mope-clip: rank ${world.rank} of ${world.size}: ${detail}\n`);
    world.abort(exitCode(e));
  }
  world.finalize();
  return r;
}
