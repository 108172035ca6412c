// `mope-clip data export SPEC --out DIR`: any data source written as PNG files plus a CSV, to look at and reuse.
import { checkOutputDir } from '../io/out-path.ts';
import type { Command } from 'commander';
import { emitJson, specPath } from './common.ts';
import { addDataFlags, dataOptions } from './data-flags.ts';
import { exportDataset } from '../data/export.ts';
import { SPEC_HELP } from '../data/spec.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  const data = program.command('data').description('Data set utilities.');
  const exp = data
    .command('export')
    .description(
      `Write a data source as PNG files plus a CSV (pairs: images/ + data.csv with filepath,title; classification: one folder per class + classnames.txt + data.csv). SPEC: ${SPEC_HELP}`,
    )
    .argument('<spec>', 'data SPEC')
    .requiredOption('--out <dir>', 'output folder (must not exist or be empty)')
    .option('--no-progress', 'no progress bar');
  addDataFlags(exp).action(async (spec: string, o) => {
    checkOutputDir(o.out, '--out', [{ flag: 'SPEC', path: specPath(spec) }]);
    const r = await exportDataset(spec, o.out, { ...dataOptions(o), progress: o.progress });
    emitJson(io, r);
  });
}
