// `mope-clip distill`: trains a student (usually a pruned copy) against a frozen teacher with
// L = α·L_con + β·L_kd + γ·(L_emb + L_hid); configs are checked for compatibility before any work.
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import { DEFAULT_LOSS_WEIGHTS, type LossWeights } from '../distill/losses.ts';
import { loadEvalModel } from '../eval/run.ts';
import { loadCheckpoint, loadConfig } from '../io/checkpoint.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { checkDistillable } from '../train/distill-check.ts';
import { trainLoop } from '../train/loop.ts';
import { emitJson, makeRuntime } from './common.ts';
import { addTrainFlags, parseFreeze, parseTrainFlags, resultJson, type Flags } from './train-flags.ts';

function weight(v: unknown, flag: string, positive = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (positive && n === 0)) throw new ConfigError(`${flag} expects a number ${positive ? '> 0' : '≥ 0'}, found "${String(v)}".`);
  return n;
}

export function parseLossFlags(o: Flags): LossWeights {
  return {
    alpha: weight(o.alpha, '--alpha'), beta: weight(o.beta, '--beta'), gamma: weight(o.gamma, '--gamma'),
    temperature: weight(o.temperature, '--temperature', true),
  };
}

export function register(program: Command): void {
  const d = DEFAULT_LOSS_WEIGHTS;
  const cmd = program
    .command('distill')
    .description('Distil a student from a frozen teacher: contrastive + cross-modal KD + embedding and hidden-state MSE.')
    .requiredOption('--teacher <dir>', 'teacher checkpoint folder (frozen)')
    .requiredOption('--student <dir>', 'student checkpoint folder (e.g. a pruned copy of the teacher)')
    .option('--alpha <x>', 'weight of the contrastive loss L_con', String(d.alpha))
    .option('--beta <x>', 'weight of the cross-modal KD loss L_kd', String(d.beta))
    .option('--gamma <x>', 'weight of L_emb + L_hid (0 = no hidden-state distillation)', String(d.gamma))
    .option('--temperature <x>', 'temperature τ of L_kd', String(d.temperature));
  addTrainFlags(cmd).action(async (o: Flags) => {
    const loss = parseLossFlags(o);
    const freeze = parseFreeze(o.freeze);
    // Configs only: a mismatch is reported before any weights or data are read.
    checkDistillable(loadConfig(String(o.teacher)), loadConfig(String(o.student)), {
      gamma: loss.gamma, freeze, teacherName: String(o.teacher), studentName: String(o.student),
    });
    const parsed = parseTrainFlags(o);
    const rt = makeRuntime({ threads: o.threads as string | undefined, seed: parsed.seed, precision: o.precision as string | undefined });
    const teacher = loadCheckpoint(String(o.teacher));
    const m = await loadEvalModel(rt, String(o.student));
    const r = await trainLoop(rt, {
      ...parsed, loss, teacher,
      student: { model: m.model, tokenizer: m.tokenizer as ClipTokenizer, preprocess: m.preprocess, auxFrom: String(o.student) },
      flags: { command: 'distill', teacher: o.teacher, student: o.student, loss, ...parsed.flags },
    });
    emitJson(resultJson(r));
  });
}
