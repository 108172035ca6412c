// The compress pipeline's stages across the ranks of a data-parallel run: a distil stage runs on every rank (the
// training itself is data parallel) while only rank 0 records it; every other stage (scoring, pruning, eval,
// report) runs on rank 0 alone while the others wait, then reads its recorded result from the ledger.
import type { StageLedger } from './stages.ts';
import type { World } from '../parallel/world.ts';

/** How long followers wait for rank 0's single-process stages (scoring a large model can take hours). */
export const STAGE_WAIT_S = 7 * 24 * 3600;

export class RankedStages {
  constructor(
    private readonly world: World,
    private readonly ledger: StageLedger,
  ) {}

  /** A stage rank 0 runs alone. */
  async lead<R extends Record<string, unknown>>(name: string, fn: () => Promise<R> | R): Promise<R> {
    if (this.world.size === 1) return this.ledger.run(name, fn);
    let r: R | undefined;
    if (this.world.rank === 0) r = await this.ledger.run(name, fn);
    this.world.barrier(STAGE_WAIT_S);
    if (r !== undefined) return r;
    this.ledger.reload();
    return this.ledger.done(name)!.result as R;
  }

  /** A stage every rank runs together (a data-parallel trainLoop); rank 0 records it. */
  async all<R extends Record<string, unknown>>(name: string, fn: () => Promise<R> | R): Promise<R> {
    if (this.world.size === 1 || this.world.rank === 0) return this.ledger.run(name, fn);
    this.ledger.reload();
    const prev = this.ledger.done(name);
    return prev ? (prev.result as R) : fn();
  }
}
