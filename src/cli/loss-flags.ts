// Loss-weight flags shared by `distill` and `compress`: one weight per term (--w-con --w-kd --w-emb --w-hid) and
// the temperature. The older --alpha / --beta / --gamma stay as aliases: --alpha = --w-con, --beta = --w-kd,
// --gamma sets both --w-emb and --w-hid; an explicit --w-* flag wins over its alias.
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import type { LossWeights } from '../distill/losses.ts';

type Flags = Record<string, unknown>;

function weight(v: unknown, flag: string, positive = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (positive && n === 0))
    throw new ConfigError(`${flag} expects a number ${positive ? '> 0' : '≥ 0'}, found "${String(v)}".`);
  return n;
}

/** Adds the flags without defaults (absent = the caller's defaults). */
export function addLossFlags(cmd: Command, defaults: Readonly<LossWeights>): Command {
  const d = (k: keyof LossWeights) => ` (default ${defaults[k]})`;
  return cmd
    .option('--w-con <x>', `weight of the contrastive loss L_con${d('wCon')}`)
    .option('--w-kd <x>', `weight of the cross-modal distillation loss L_kd${d('wKd')}`)
    .option('--w-emb <x>', `weight of the embedding MSE L_emb${d('wEmb')}`)
    .option('--w-hid <x>', `weight of the hidden-state MSE L_hid, a mean over matched layers (0 = off)${d('wHid')}`)
    .option('--temperature <x>', `temperature τ of L_kd${d('temperature')}`)
    .option('--alpha <x>', 'alias of --w-con')
    .option('--beta <x>', 'alias of --w-kd')
    .option('--gamma <x>', 'alias setting both --w-emb and --w-hid');
}

/** The weights the flags set (only those given). */
export function parseLossFlags(o: Flags): Partial<LossWeights> {
  const w: Partial<LossWeights> = {};
  const pick = (k: keyof LossWeights, main: string, mainFlag: string, alias?: string, aliasFlag?: string) => {
    if (o[main] !== undefined) w[k] = weight(o[main], mainFlag, k === 'temperature');
    else if (alias !== undefined && o[alias] !== undefined) w[k] = weight(o[alias], aliasFlag!);
  };
  pick('wCon', 'wCon', '--w-con', 'alpha', '--alpha');
  pick('wKd', 'wKd', '--w-kd', 'beta', '--beta');
  pick('wEmb', 'wEmb', '--w-emb', 'gamma', '--gamma');
  pick('wHid', 'wHid', '--w-hid', 'gamma', '--gamma');
  pick('temperature', 'temperature', '--temperature');
  return w;
}
