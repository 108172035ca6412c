// The data-source flags shared by eval, data export, score and training commands (see src/data/spec.ts).
import type { Command } from 'commander';
import type { OpenDataOptions } from '../data/spec.ts';
import { parseNonNegativeInt, parsePositiveInt } from './common.ts';

export function addDataFlags(cmd: Command): Command {
  return cmd
    .option('--limit <n>', 'a deterministic (seeded) subset of N items, kept in source order')
    .option('--seed <s>', 'seed for the --limit subset', '0')
    .option(
      '--skip-bad',
      'skip unreadable items (missing images, empty captions, …) and report them, instead of failing',
    )
    .option('--image-key <name>', 'csv/tsv: image column (default filepath); jsonl: image key (default image)')
    .option(
      '--caption-key <name>',
      'csv/tsv: caption column (default title); jsonl: caption key (default caption / captions)',
    )
    .option('--classnames <file>', 'folder: class names, one per line in sorted folder order')
    .option('--image-root <dir>', "base folder for relative image paths (default: the data file's folder)");
}

export function dataOptions(o: Record<string, string | boolean | undefined>): OpenDataOptions {
  return {
    limit: o.limit === undefined ? undefined : parsePositiveInt(String(o.limit), '--limit'),
    seed: o.seed === undefined ? 0 : parseNonNegativeInt(String(o.seed), '--seed'),
    skipBad: Boolean(o.skipBad),
    imageKey: o.imageKey as string | undefined,
    captionKey: o.captionKey as string | undefined,
    classnames: o.classnames as string | undefined,
    imageRoot: o.imageRoot as string | undefined,
  };
}
