// Training checkpoints: OUT/checkpoint/ holds a loadable model folder (config.json, model.safetensors, tokenizer and
// preprocessor files) plus optimizer.safetensors (optimiser state by parameter name) and train_state.json (step, RNG,
// data position, flags). A new checkpoint is written whole into OUT/checkpoint.tmp/ and swapped in by two renames,
// so a failed write (full disk, crash) leaves the previous checkpoint as it was. Dims: none.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../errors.ts';
import { copyAuxFiles, saveCheckpoint } from '../io/checkpoint.ts';
import { replaceFolderAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { serializePreprocessorConfig, type PreprocessorConfig } from '../io/preprocess.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { writeTokenizerFolder } from '../io/tokenizer-files.ts';
import type { ClipModel } from '../model/types.ts';
import type { Optimizer } from './optim.ts';
import type { DataPosition } from './data.ts';

export const CHECKPOINT_DIR = 'checkpoint';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAIN_STATE_FILE = 'train_state.json';
export const TRAIN_STATE_FORMAT = 'mope-clip-train-state';

export interface TrainState {
  format: typeof TRAIN_STATE_FORMAT;
  version: 1;
  /** Optimiser steps taken. */
  step: number;
  /** Data position after `step` (epoch order = permutation seeded by permutation_seed and the epoch). */
  data: DataPosition & { permutation_seed: number; shuffle: boolean; steps_per_epoch: number };
  /** Step RNG: caption draws of step s come from Rng("train-captions:<seed>:<s>"), so the seed is the whole state. */
  rng: { seed: number; scheme: 'per-step' };
  /** The run's settings (checked on --resume). */
  flags: Record<string, unknown>;
  /** Loss parts of the last step. */
  loss: Record<string, number> | null;
  time: string;
}

/** What makes up a model folder: weights and config, tokenizer and preprocessing. */
export interface ModelFiles {
  model: ClipModel;
  tokenizer: ClipTokenizer;
  preprocess: PreprocessorConfig;
  /** Copy the tokenizer files from here (faster, keeps them byte-identical) instead of writing them. */
  auxFrom?: string;
}

/** Called after each file of a checkpoint is written (tests inject a failing writer, e.g. ENOSPC, through it). */
export type WriteHook = (file: string) => void;

/** Writes a complete model folder into dir (existing files replaced one by one, each atomically). */
export function writeModelFolder(m: ModelFiles, dir: string, hook?: WriteHook): void {
  mkdirSync(dir, { recursive: true });
  saveCheckpoint(m.model, dir);
  hook?.('model.safetensors');
  const hasTok = (d: string) => existsSync(join(d, 'tokenizer.json')) || existsSync(join(d, 'vocab.json'));
  if (m.auxFrom !== undefined && hasTok(m.auxFrom)) {
    copyAuxFiles(m.auxFrom, dir);
  } else {
    writeTokenizerFolder(m.tokenizer, dir);
  }
  hook?.('tokenizer');
  writeJsonAtomic(join(dir, 'preprocessor_config.json'), serializePreprocessorConfig(m.preprocess));
  hook?.('preprocessor_config.json');
}

/**
 * Writes checkpoint `state` into OUT/checkpoint. The previous checkpoint survives any failure before the swap; a
 * crash between the two renames leaves it in OUT/checkpoint.old, which readTrainCheckpoint falls back to.
 */
export function writeTrainCheckpoint(
  out: string,
  m: ModelFiles,
  opt: Optimizer,
  state: TrainState,
  hook?: WriteHook,
): string {
  const dir = join(out, CHECKPOINT_DIR),
    tmp = `${dir}.tmp`,
    old = `${dir}.old`;
  try {
    replaceFolderAtomic(dir, (tmp) => writeCheckpointInto(tmp, m, opt, state, hook), { tmp, old });
  } catch (e) {
    const prev = existsSync(join(dir, TRAIN_STATE_FILE)) ? ` The previous checkpoint in ${dir} is intact.` : '';
    throw new CheckpointError(
      `cannot write the step-${state.step} checkpoint into ${out}: ${(e as Error).message}.${prev}`,
    );
  }
  return dir;
}

function writeCheckpointInto(tmp: string, m: ModelFiles, opt: Optimizer, state: TrainState, hook?: WriteHook): void {
  writeModelFolder(m, tmp, hook);
  const tensors = [...opt.stateTensors()].map(([k, v]) => [k, { shape: [v.length], data: v }] as const);
  writeSafetensors(join(tmp, OPTIMIZER_FILE), new Map(tensors), {
    metadata: { kind: 'mope-clip-optimizer', optimizer: opt.cfg.optimizer },
  });
  hook?.(OPTIMIZER_FILE);
  writeJsonAtomic(join(tmp, TRAIN_STATE_FILE), state);
  hook?.(TRAIN_STATE_FILE);
}

/** The checkpoint folder of OUT to resume from (OUT/checkpoint, else an interrupted swap's OUT/checkpoint.old), or null. */
export function findTrainCheckpoint(out: string): string | null {
  for (const d of [CHECKPOINT_DIR, `${CHECKPOINT_DIR}.old`]) {
    if (existsSync(join(out, d, TRAIN_STATE_FILE))) return join(out, d);
  }
  return null;
}

export function readTrainState(dir: string): TrainState {
  const path = join(dir, TRAIN_STATE_FILE);
  let j: TrainState;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as TrainState;
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read the training state (${(e as Error).message}).`);
  }
  if (
    j?.format !== TRAIN_STATE_FORMAT ||
    !Number.isInteger(j.step) ||
    j.step < 0 ||
    typeof j.data?.epoch !== 'number'
  ) {
    throw new CheckpointError(`${path}: not a mope-clip training state (format "${String(j?.format)}").`);
  }
  return j;
}

/** Loads a checkpoint's model and restores the optimiser state into `opt` (whose parameters must be that model's). */
export function loadOptimizerState(dir: string, opt: Optimizer): void {
  const path = join(dir, OPTIMIZER_FILE);
  if (!existsSync(path)) throw new CheckpointError(`${path}: optimiser state missing; the checkpoint is incomplete.`);
  const { tensors } = readSafetensors(path);
  opt.loadStateTensors(new Map([...tensors].map(([k, t]) => [k, t.data])));
}
