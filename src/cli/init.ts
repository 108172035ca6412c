// `mope-clip init --geometry NAME|FILE.json --seed S --out DIR`: a random-weight CLIP checkpoint folder for
// benchmarks, tests and training from scratch (same geometries as `bench` and `train --init`). Prints a JSON line.
import { checkOutputDir } from '../io/out-path.ts';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { initFolder } from '../train/init-folder.ts';
import { GEOMETRIES } from '../model/init.ts';
import { readGeometry } from '../train/init-geometry.ts';
import { emitJson, parseNonNegativeInt } from './common.ts';
import { processIO, type CliIO } from './io.ts';

interface InitFlags {
  geometry?: string;
  seed: string;
  out?: string;
  force?: boolean;
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('init')
    .description('Write a random-weight Hugging Face CLIP checkpoint folder of a standard geometry or a GEOMETRY.json')
    .option(
      '--geometry <name|file>',
      `${Object.keys(GEOMETRIES).join(', ')} or a JSON file {text, vision, projectionDim}`,
    )
    .option('--seed <s>', 'seed of the random weights', '0')
    .option('--out <dir>', 'folder to create (must not exist or be empty)')
    .option('--force', 'replace a non-empty --out (the old folder is removed only once the new one is complete)')
    .action((o: InitFlags) => {
      if (!o.geometry) throw new ConfigError('init needs --geometry NAME|FILE.json');
      if (!o.out) throw new ConfigError('init needs --out DIR');
      checkOutputDir(o.out, '--out', [{ flag: '--geometry', path: o.geometry }]);
      const seed = parseNonNegativeInt(o.seed, '--seed');
      const plan = initFolder(readGeometry(o.geometry, '--geometry'), seed, o.out, { force: Boolean(o.force) });
      emitJson(io, {
        out: o.out,
        geometry: o.geometry,
        seed,
        parameters: plan.parameters,
        weight_bytes: plan.weight_bytes,
      });
    });
}
