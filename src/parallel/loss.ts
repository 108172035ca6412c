// The training loss of a data-parallel step: each rank holds a disjoint shard of the global batch, and the loss
// must be the one of the whole batch. As open_clip's gather_with_grad, the student's and the teacher's image and
// text embeddings of every shard are all-gathered (rank order), every rank computes the global-batch loss and its
// gradient w.r.t. all gathered embeddings, and keeps the rows of its own shard: the backward of each shard then
// yields that shard's share of ∂L/∂θ, and the sum over ranks (the gradient all-reduce) is the single-process
// gradient. ∂L/∂s (logit_scale) is the same on every rank, so each rank contributes 1/N of it. L_hid is local
// (token-wise) but normalised by the global token count, which is gathered with the embeddings.
// Dims: n rows of this rank's shard, B = Σ n over ranks, E projection dim, N ranks.
import type { Runtime } from '../engine/runtime.ts';
import { ShapeError } from '../errors.ts';
import {
  DEFAULT_LOSS_WEIGHTS,
  distillationLoss,
  hiddenLoss,
  type DistillInputs,
  type DistillResult,
  type LossWeights,
  type PairEmbeddings,
} from '../distill/losses.ts';
import type { World } from './world.ts';

/** The signature of distillationLoss (src/distill/losses.ts), which a data-parallel step replaces. */
export type LossFn = (
  rt: Runtime,
  inputs: DistillInputs,
  B: number,
  E: number,
  weights?: Partial<LossWeights>,
) => DistillResult;

/** Header per rank: n, then per hidden tower (at most 2) its token count and local L_hid value. */
const HEADER = 5;

/** The loss over the global batch of `world`'s shards, with this rank's share of the gradients. */
export function shardedLoss(world: World): LossFn {
  return (rt, inputs, n, E, weights = {}) => {
    const w = { ...DEFAULT_LOSS_WEIGHTS, ...weights };
    const N = world.size,
      towers = inputs.hidden ?? [];
    if (towers.length > 2) throw new ShapeError(`sharded loss: at most 2 hidden towers, got ${towers.length}`);
    const teacher = inputs.teacher;
    const useHidden = teacher !== null && towers.length > 0;

    // Local L_hid per tower (unit weight, local normalisation), rescaled below once the global counts are known.
    const local = useHidden ? towers.map((t) => hiddenLoss([t], 1, rt.kernels)) : [];
    const counts = towers.map((t) => {
      let c = 0;
      for (let b = 0; b < t.B; b++) c += t.lengths ? Math.min(t.T, t.lengths[b]!) : t.T;
      return c;
    });
    const head = new Float32Array(HEADER);
    head[0] = n;
    local.forEach((h, i) => {
      head[1 + 2 * i] = counts[i]!;
      head[2 + 2 * i] = h.value * counts[i]!;
    });
    const heads = world.allgather(head);
    const rows = Array.from({ length: N }, (_, r) => heads[r * HEADER]!);
    const B = rows.reduce((a, b) => a + b, 0),
      maxN = Math.max(...rows);
    const off = rows.slice(0, world.rank).reduce((a, b) => a + b, 0);

    // One gather of [student image | student text | teacher image | teacher text], each padded to maxN rows.
    const parts: Float32Array[] = [inputs.student.image, inputs.student.text];
    if (teacher) parts.push(teacher.image, teacher.text);
    for (const p of parts) {
      if (p.length !== n * E)
        throw new ShapeError(`sharded loss: embeddings have ${p.length} elements, expected n·E = ${n}·${E}`);
    }
    const block = maxN * E,
      send = new Float32Array(parts.length * block);
    parts.forEach((p, i) => send.set(p, i * block));
    const all = world.allgather(send);
    const full = (i: number): Float32Array => {
      const out = new Float32Array(B * E);
      let at = 0;
      for (let r = 0; r < N; r++) {
        const from = r * parts.length * block + i * block;
        out.set(all.subarray(from, from + rows[r]! * E), at);
        at += rows[r]! * E;
      }
      return out;
    };
    const st: PairEmbeddings = { image: full(0), text: full(1), logitScale: inputs.student.logitScale };
    const te: PairEmbeddings | null = teacher
      ? { image: full(2), text: full(3), logitScale: teacher.logitScale }
      : null;
    const g = distillationLoss(rt, { student: st, teacher: te, hidden: [] }, B, E, w);

    let hid = 0;
    const dHidden: Float32Array[][] = [];
    local.forEach((h, i) => {
      let countG = 0,
        sum = 0;
      for (let r = 0; r < N; r++) {
        countG += heads[r * HEADER + 1 + 2 * i]!;
        sum += heads[r * HEADER + 2 + 2 * i]!;
      }
      hid += sum / countG / local.length;
      // the local gradient is 2·d/(count·C·L); the global one is 2·w·d/(countG·C·L·towers)
      const f = (w.wHid * counts[i]!) / (countG * local.length);
      for (const a of h.dHidden[0]!) for (let k = 0; k < a.length; k++) a[k] *= f;
      dHidden.push(h.dHidden[0]!);
    });
    const total = w.wCon * g.con + (te ? w.wKd * g.kd + w.wEmb * g.emb + w.wHid * hid : 0);
    return {
      total,
      con: g.con,
      kd: g.kd,
      emb: g.emb,
      hid,
      dImage: g.dImage.slice(off * E, (off + n) * E),
      dText: g.dText.slice(off * E, (off + n) * E),
      dLogitScale: g.dLogitScale / N,
      dHidden,
    };
  };
}
