// `mope-clip train`: contrastive training or fine-tuning of a checkpoint (--model DIR) or of a fresh model
// (--init GEOMETRY); checkpoints, eval and resume as in src/train/loop.ts. Prints a JSON summary line.
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { loadEvalModel } from '../eval/run.ts';
import { initModelFiles, readGeometry } from '../train/init-geometry.ts';
import { trainLoop } from '../train/loop.ts';
import type { ModelFiles } from '../train/checkpoint.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { rankRuntime, withWorld } from '../parallel/launch.ts';
import { emitJson, makeRuntime } from './common.ts';
import { addTrainFlags, parseTrainFlags, resultJson, type Flags } from './train-flags.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  const cmd = program
    .command('train')
    .description(
      'Contrastive (CLIP) training or fine-tuning, with periodic eval, atomic checkpoints and exact --resume.',
    )
    .option('--model <dir>', 'checkpoint folder to fine-tune')
    .option(
      '--init <geometry>',
      'start from a fresh seeded model: a geometry name (tiny, vit-b-32, …) or GEOMETRY.json',
    );
  addTrainFlags(cmd).action((o: Flags) =>
    withWorld(async (world) => {
      if ((o.model === undefined) === (o.init === undefined))
        throw new ConfigError('train needs exactly one of --model DIR or --init GEOMETRY.');
      const geometry = o.init !== undefined ? readGeometry(String(o.init)) : null;
      const parsed = parseTrainFlags(o);
      const rt0 = makeRuntime({
        threads: o.threads as string | undefined,
        seed: parsed.seed,
        precision: o.precision as string | undefined,
      });
      const rt = rankRuntime(rt0, world);
      let student: ModelFiles;
      if (geometry) {
        student = initModelFiles(geometry, parsed.seed ?? 0);
      } else {
        const m = await loadEvalModel(rt, String(o.model));
        student = {
          model: m.model,
          tokenizer: m.tokenizer as ClipTokenizer,
          preprocess: m.preprocess,
          auxFrom: String(o.model),
        };
      }
      const r = await trainLoop(rt, {
        ...parsed,
        student,
        world,
        flags: { command: 'train', model: o.model ?? null, init: geometry, ...parsed.flags },
      });
      if (world.rank === 0) emitJson(io, resultJson(r));
    }),
  );
}
