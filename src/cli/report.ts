// `mope-clip report scores.json [more.json …] --out report.html [--svg-dir DIR] [--png-dir DIR]`: the HTML report
// of score files (heatmaps, FFN / layer bars, sorted curves, criteria comparison) and optionally every figure alone.
import { checkOutputDir, checkOutputFile } from '../io/out-path.ts';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { readScoresFile } from '../prune/scores-file.ts';
import { buildScoresReport, type Figure } from '../report/scores-report.ts';
import { emitJson } from './common.ts';
import { processIO, type CliIO } from './io.ts';

interface ReportFlags {
  out?: string;
  svgDir?: string;
  pngDir?: string;
  title?: string;
}

/** PNG renderings of the figures (sharp / librsvg), all made before anything is written. */
async function renderPngs(figures: Figure[]): Promise<Array<{ name: string; png: Buffer }>> {
  const sharp = (await import('sharp')).default;
  const out: Array<{ name: string; png: Buffer }> = [];
  for (const f of figures) {
    try {
      out.push({ name: f.name, png: await sharp(Buffer.from(f.svg), { density: 144 }).png().toBuffer() });
    } catch (e) {
      throw new ConfigError(
        `--png-dir: could not render figure ${f.name} (${(e as Error).message}); use --svg-dir instead`,
      );
    }
  }
  return out;
}

export async function reportAction(io: CliIO, files: string[], o: ReportFlags): Promise<void> {
  if (!o.out) throw new ConfigError('report needs --out report.html');
  if (files.length === 0) throw new ConfigError('report needs at least one scores file');
  const ins = files.map((f) => ({ flag: 'input', path: f }));
  checkOutputFile(o.out, '--out', ins);
  if (o.svgDir) checkOutputDir(o.svgDir, '--svg-dir', ins);
  if (o.pngDir) checkOutputDir(o.pngDir, '--png-dir', ins);
  // Read and validate every input first: a bad file is a clear error and nothing is written.
  const inputs = files.map((name) => ({ name, file: readScoresFile(name) }));
  const report = buildScoresReport(inputs, { title: o.title });
  const pngs = o.pngDir ? await renderPngs(report.figures) : [];
  writeFileAtomic(o.out, report.html);
  if (o.svgDir) {
    for (const f of report.figures)
      writeFileAtomic(join(o.svgDir, `${f.name}.svg`), `<?xml version="1.0" encoding="UTF-8"?>\n${f.svg}\n`);
  }
  if (o.pngDir) for (const p of pngs) writeFileAtomic(join(o.pngDir, `${p.name}.png`), p.png);
  emitJson(io, {
    out: o.out,
    files: files.length,
    figures: report.figures.map((f) => f.name),
    svg_dir: o.svgDir ?? null,
    png_dir: o.pngDir ?? null,
  });
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('report')
    .description(
      'HTML report of scores files: per tower a layer × head heatmap, FFN group and layer bars, sorted importance curves; a criteria comparison when several criteria are given',
    )
    .argument('<files...>', 'scores.json files (from mope-clip score; e.g. one per metric: mope, magnitude, random)')
    .option('--out <file>', 'report.html to write')
    .option('--svg-dir <dir>', 'also write every figure as a standalone .svg file here')
    .option('--png-dir <dir>', 'also write every figure as a .png file here')
    .option('--title <text>', 'report title')
    .action(async (files: string[], o: ReportFlags) => reportAction(io, files, o));
}
