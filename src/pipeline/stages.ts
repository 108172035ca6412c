// The run folder's stage ledger (RUN_DIR/stages.json): the options the run was started with and each completed
// stage with its outputs and wall time. A rerun skips completed stages and resumes at the first unfinished one;
// a rerun with different options is refused (the folder's files would mix two runs). Written atomically.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.ts';
import { CheckpointError, ConfigError } from '../errors.ts';
import type { Logger } from '../engine/runtime.ts';

export const STAGES_FILE = 'stages.json';
export const STAGES_FORMAT = 'mope-clip-compress-stages';

export interface StageRecord {
  name: string;
  /** Seconds the stage took when it ran. */
  seconds: number;
  /** When it finished (ISO time). */
  finished: string;
  /** Whatever the stage wants a resumed run (and the report) to know: folders, scores, eval figures. */
  result: Record<string, unknown>;
}

export interface StagesFile {
  format: typeof STAGES_FORMAT;
  version: 1;
  /** The settings that decide the stages' outputs; a rerun must pass the same. */
  options: Record<string, unknown>;
  /** The planned stage names in order (for progress and the report). */
  plan: string[];
  completed: StageRecord[];
}

/** Loads or starts the ledger of RUN_DIR. */
export class StageLedger {
  readonly path: string;
  readonly file: StagesFile;

  /**
   * readOnly: a follower of another process that owns the ledger (the ranks > 0 of a data-parallel run): it reads
   * the file (reload() after each stage) but never writes it.
   */
  constructor(
    readonly dir: string,
    options: Record<string, unknown>,
    plan: string[],
    private readonly log: Logger,
    private readonly readOnly = false,
    /** Told when a stage that runs now starts and ends (bench --mode compress measures memory per stage). */
    private readonly onStage?: (name: string, phase: 'start' | 'end') => void,
  ) {
    this.path = join(dir, STAGES_FILE);
    if (!readOnly) mkdirSync(dir, { recursive: true });
    if (existsSync(this.path)) {
      let prev: StagesFile;
      try {
        prev = JSON.parse(readFileSync(this.path, 'utf8')) as StagesFile;
      } catch (e) {
        throw new CheckpointError(
          `${this.path}: not valid JSON (${(e as Error).message}); delete the run folder to start over.`,
        );
      }
      if (prev.format !== STAGES_FORMAT)
        throw new CheckpointError(`${this.path}: not a compress stage ledger (format ${JSON.stringify(prev.format)}).`);
      const diff = Object.keys({ ...prev.options, ...options }).filter(
        (k) => JSON.stringify(prev.options[k]) !== JSON.stringify(options[k]),
      );
      if (diff.length > 0) {
        throw new ConfigError(
          `${dir} holds a run started with other settings (${diff.map((k) => `${k}: was ${JSON.stringify(prev.options[k])}, now ${JSON.stringify(options[k])}`).join('; ')}). ` +
            'Rerun with the same settings to resume it, or choose another --out.',
        );
      }
      this.file = { ...prev, plan };
      if (prev.completed.length > 0)
        this.log.info(
          `resuming ${dir}: ${prev.completed.length} of ${plan.length} stages already done (${prev.completed.map((s) => s.name).join(', ')})`,
        );
    } else {
      this.file = { format: STAGES_FORMAT, version: 1, options, plan, completed: [] };
    }
    this.flush();
  }

  private flush(): void {
    if (!this.readOnly) writeJsonAtomic(this.path, this.file);
  }

  /** Rereads the completed stages from the file (a follower, after the owner ran a stage). */
  reload(): void {
    if (existsSync(this.path))
      this.file.completed = (JSON.parse(readFileSync(this.path, 'utf8')) as StagesFile).completed;
  }

  done(name: string): StageRecord | undefined {
    return this.file.completed.find((s) => s.name === name);
  }

  /** Runs a stage unless it is already complete; returns its (stored or fresh) result. */
  async run<R extends Record<string, unknown>>(name: string, fn: () => Promise<R> | R): Promise<R> {
    const prev = this.done(name);
    const k = this.file.plan.indexOf(name) + 1;
    const tag = `[${k}/${this.file.plan.length}] ${name}`;
    if (prev) {
      this.log.info(`${tag}: done earlier, skipped`);
      return prev.result as R;
    }
    this.log.info(`${tag} …`);
    this.onStage?.(name, 'start');
    const t0 = performance.now();
    const result = await fn();
    this.onStage?.(name, 'end');
    const seconds = (performance.now() - t0) / 1000;
    this.file.completed.push({ name, seconds, finished: new Date().toISOString(), result });
    this.flush();
    this.log.info(`${tag}: done in ${seconds.toFixed(1)} s`);
    return result;
  }
}
