// The --data SPEC syntax (csv:, tsv:, jsonl:, coco:, folder:, builtin:) and openDataset, which parses a
// spec, reads the source, and applies --limit / --seed.
import { resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { BadItemLog, limitDataset, type Dataset } from './dataset.ts';
import { openFashionMnist, type Split } from './fashion.ts';
import { readCoco } from './readers/coco.ts';
import { readCsv } from './readers/csv.ts';
import { readFolder } from './readers/folder.ts';
import { readJsonl } from './readers/jsonl.ts';
import { openFashionScenes } from './scenes.ts';
import { openFashionMix } from './mix.ts';

export type DataSpec =
  | { kind: 'csv' | 'tsv' | 'jsonl' | 'folder'; path: string }
  | { kind: 'coco'; path: string; split?: string }
  | { kind: 'builtin'; name: (typeof BUILTIN_NAMES)[number]; split: Split | 'all' };

export const BUILTIN_NAMES = ['fashion-mnist', 'fashion-scenes', 'fashion-mix'] as const;
const BUILTIN_SPLITS = ['train', 'val', 'test', 'all'];
const COCO_SPLITS = /^(train|val|test|restval)(\+(train|val|test|restval))*$/;

export const SPEC_HELP =
  'csv:PATH, tsv:PATH, jsonl:PATH, coco:PATH[:SPLIT], folder:PATH, builtin:fashion-mnist[:train|val|test|all], ' +
  'builtin:fashion-scenes[:train|val|test|all], builtin:fashion-mix[:train|val|test|all]';

/** Parses a --data SPEC. A path may itself contain ":" (only a trailing ":SPLIT" of coco: is split off). */
export function parseDataSpec(spec: string): DataSpec {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  const fail = (why: string): never => {
    throw new ConfigError(`--data "${spec}": ${why}. Expected one of ${SPEC_HELP}.`);
  };
  if (colon < 0) fail('missing the KIND: prefix');
  switch (kind) {
    case 'csv':
    case 'tsv':
    case 'jsonl':
    case 'folder':
      if (rest === '') fail(`${kind}: needs a path`);
      return { kind, path: rest };
    case 'coco': {
      if (rest === '') fail('coco: needs a path');
      const c = rest.lastIndexOf(':');
      if (c > 0 && COCO_SPLITS.test(rest.slice(c + 1)))
        return { kind, path: rest.slice(0, c), split: rest.slice(c + 1) };
      return { kind, path: rest };
    }
    case 'builtin': {
      const [name, split = 'test', ...extra] = rest.split(':');
      if (!(BUILTIN_NAMES as readonly string[]).includes(name))
        fail(`unknown builtin data set "${name}" (builtins: ${BUILTIN_NAMES.join(', ')})`);
      if (extra.length || !BUILTIN_SPLITS.includes(split))
        fail(`unknown split "${[split, ...extra].join(':')}" (splits: train, val, test, all)`);
      return { kind, name: name as (typeof BUILTIN_NAMES)[number], split: split as Split | 'all' };
    }
    default:
      return fail(`unknown data kind "${kind}"`);
  }
}

export interface OpenDataOptions {
  /** csv/tsv: image column (default "filepath"); jsonl: image key (default "image"). --image-key */
  imageKey?: string;
  /** csv/tsv: caption column (default "title"); jsonl: caption key (default "captions"/"caption"). --caption-key */
  captionKey?: string;
  /** folder: class-names file. --classnames */
  classnames?: string;
  /** Base folder for relative image paths (default: the data file's folder). --image-root */
  imageRoot?: string;
  /** --limit N: a deterministic subset of N items (see subsetIndices). */
  limit?: number;
  /** --seed S for the subset (default 0). */
  seed?: number;
  /** --skip-bad: skip bad items (recorded in `bad`) instead of failing on the first. */
  skipBad?: boolean;
  /** Pass a log to share it with the loader (decode failures); created when absent. */
  bad?: BadItemLog;
  /** Check that image files exist while reading (default true). */
  checkFiles?: boolean;
}

export interface OpenedData {
  dataset: Dataset;
  /** Items skipped so far (reading); the loader adds decode failures to the same log. */
  bad: BadItemLog;
}

/** Parses `spec`, reads the source and applies --limit/--seed. Throws ConfigError / DataError. */
export function openDataset(spec: string, opts: OpenDataOptions = {}): OpenedData {
  const s = parseDataSpec(spec);
  const bad = opts.bad ?? new BadItemLog(opts.skipBad ?? false);
  const ropts = { imageRoot: opts.imageRoot, checkFiles: opts.checkFiles, bad };
  let ds: Dataset;
  switch (s.kind) {
    case 'csv':
    case 'tsv':
      ds = readCsv(resolve(s.path), s.kind === 'csv' ? ',' : '\t', spec, {
        ...ropts,
        imageKey: opts.imageKey,
        captionKey: opts.captionKey,
      });
      break;
    case 'jsonl':
      ds = readJsonl(resolve(s.path), spec, { ...ropts, imageKey: opts.imageKey, captionKey: opts.captionKey });
      break;
    case 'coco':
      ds = readCoco(resolve(s.path), s.split, spec, ropts);
      break;
    case 'folder':
      ds = readFolder(s.path, spec, { ...ropts, classnames: opts.classnames });
      break;
    case 'builtin':
      ds =
        s.name === 'fashion-mnist'
          ? openFashionMnist(spec, s.split)
          : s.name === 'fashion-mix'
            ? openFashionMix(spec, s.split)
            : openFashionScenes(spec, s.split);
      break;
  }
  return { dataset: limitDataset(ds, opts.limit, opts.seed ?? 0), bad };
}
