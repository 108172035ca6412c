// `mope-clip distill`: trains a student (usually a pruned copy) against a frozen teacher with
// L = w_con·L_con + w_kd·L_kd + w_emb·L_emb + w_hid·L_hid; configs are checked for compatibility before any work.
import type { Command } from 'commander';
import { DEFAULT_LOSS_WEIGHTS } from '../distill/losses.ts';
import { addLossFlags, parseLossFlags } from './loss-flags.ts';
import { addTeacherCacheFlags, parseTeacherCacheFlags } from './teacher-cache-flags.ts';
import { TeacherCache } from '../train/teacher-cache.ts';
import { loadEvalModel } from '../eval/run.ts';
import { loadCheckpoint, loadConfig } from '../io/checkpoint.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { checkDistillable } from '../train/distill-check.ts';
import { trainLoop } from '../train/loop.ts';
import { rankRuntime, withWorld } from '../parallel/launch.ts';
import { emitJson, makeRuntime } from './common.ts';
import { addTrainFlags, parseFreeze, parseTrainFlags, resultJson, type Flags } from './train-flags.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  const d = DEFAULT_LOSS_WEIGHTS;
  const cmd = program
    .command('distill')
    .description(
      'Distil a student from a frozen teacher: contrastive + cross-modal KD + embedding and hidden-state MSE.',
    )
    .requiredOption('--teacher <dir>', 'teacher checkpoint folder (frozen)')
    .requiredOption('--student <dir>', 'student checkpoint folder (e.g. a pruned copy of the teacher)');
  addLossFlags(cmd, d);
  addTeacherCacheFlags(cmd);
  addTrainFlags(cmd).action((o: Flags) =>
    withWorld(async (world) => {
      const loss = { ...d, ...parseLossFlags(o) };
      const freeze = parseFreeze(o.freeze);
      // Configs only: a mismatch is reported before any weights or data are read.
      checkDistillable(loadConfig(String(o.teacher)), loadConfig(String(o.student)), {
        wHid: loss.wHid,
        freeze,
        teacherName: String(o.teacher),
        studentName: String(o.student),
      });
      const parsed = parseTrainFlags(o);
      const rt = rankRuntime(
        makeRuntime({
          threads: o.threads as string | undefined,
          seed: parsed.seed,
          precision: o.precision as string | undefined,
        }),
        world,
      );
      const teacher = loadCheckpoint(String(o.teacher));
      const m = await loadEvalModel(rt, String(o.student));
      const cacheOpts = parseTeacherCacheFlags(o);
      const teacherCache = cacheOpts ? new TeacherCache(teacher, cacheOpts, String(rt.precision ?? 'fp32')) : null;
      const r = await trainLoop(rt, {
        ...parsed,
        loss,
        teacher,
        world,
        teacherCache,
        student: {
          model: m.model,
          tokenizer: m.tokenizer as ClipTokenizer,
          preprocess: m.preprocess,
          auxFrom: String(o.student),
        },
        flags: { command: 'distill', teacher: o.teacher, student: o.student, loss, ...parsed.flags },
      });
      if (teacherCache && world.rank === 0) rt.log.info(`teacher cache: ${JSON.stringify(teacherCache.stats)}`);
      if (world.rank === 0) emitJson(io, resultJson(r));
    }),
  );
}
