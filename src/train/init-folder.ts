// `mope-clip init`: a seeded random-weight Hugging Face CLIP checkpoint folder (config.json, model.safetensors,
// vocab.json + merges.txt, preprocessor_config.json) from the geometry table of src/model/init.ts or a JSON file.
// The folder is built whole in a hidden sibling and renamed into place, so DIR never holds a half-written model.
// Dims: those of ClipGeometry; bytes = 4 per fp32 parameter.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { countConfigParameters } from '../io/checkpoint.ts';
import { configFromGeometry, type ClipGeometry } from '../model/init.ts';
import type { ClipConfig } from '../model/types.ts';
import { initModelFiles } from './init-geometry.ts';
import { writeModelFolder } from './checkpoint.ts';
import { replaceFolderAtomic } from '../io/atomic.ts';

export interface InitPlan {
  config: ClipConfig;
  parameters: number;
  /** Size of model.safetensors' tensor data in fp32 (the header adds a few kB). */
  weight_bytes: number;
}

/** What `init` would write, without allocating any weights (checks the geometry). */
export function planInit(geometry: ClipGeometry): InitPlan {
  const config = configFromGeometry(geometry);
  const parameters = countConfigParameters(config);
  return { config, parameters, weight_bytes: 4 * parameters };
}

/** True when dir exists and holds anything. */
function nonEmpty(dir: string): boolean {
  if (!existsSync(dir)) return false;
  if (!statSync(dir).isDirectory()) throw new ConfigError(`--out ${dir} exists and is not a folder.`);
  return readdirSync(dir).length > 0;
}

/**
 * Writes a random model folder of `geometry` into `out`. Refuses an existing non-empty `out` unless `force`, in which
 * case the old folder is replaced only after the new one is complete.
 */
export function initFolder(
  geometry: ClipGeometry,
  seed: number,
  out: string,
  opts: { force?: boolean } = {},
): InitPlan {
  if (!Number.isInteger(seed) || seed < 0)
    throw new ConfigError(`--seed must be a non-negative integer, found ${seed}.`);
  const plan = planInit(geometry);
  const dir = resolve(out);
  if (nonEmpty(dir) && !opts.force) {
    throw new ConfigError(
      `--out ${out} exists and is not empty; choose another folder, empty it, or pass --force to replace it.`,
    );
  }
  replaceFolderAtomic(dir, (tmp) => writeModelFolder(initModelFiles(geometry, seed), tmp));
  return plan;
}
