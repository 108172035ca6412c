// One training step: forward both towers with tapes → contrastive or distillation loss against a frozen teacher →
// backward into the gradient container (accumulating) → optionally an optimiser step after k micro-batches.
// Dims: B pairs, T tokens, E projection dim, C width, pixels [B,ch,S,S].
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError, MopeError } from '../errors.ts';
import type { ClipModel, ClipWeights, TowerMasks } from '../model/types.ts';
import type { Tower } from '../model/workspace.ts';
import {
  runLayers,
  textEmbed,
  textForward,
  textHead,
  visionEmbed,
  visionForward,
  visionHead,
  visionTokens,
} from '../model/forward.ts';
import { textForwardTrain, visionForwardTrain } from '../model/train-forward.ts';
import { tapeHidden, type TextTape, type VisionTape } from '../model/tape.ts';
import { textBackward, visionBackward } from '../model/backward.ts';
import {
  DEFAULT_LOSS_WEIGHTS,
  distillationLoss,
  mapLayers,
  type HiddenTower,
  type LossParts,
  type LossWeights,
  type PairEmbeddings,
} from '../distill/losses.ts';
import { shardedLoss, type LossFn } from '../parallel/loss.ts';
import type { World } from '../parallel/world.ts';
import type { Optimizer, StepInfo } from './optim.ts';
import type { LayerNeeds, TeacherCache, TeacherOutputs } from './teacher-cache.ts';

/** B image-text pairs. */
export interface TrainBatch {
  B: number;
  /** Token ids [B,T] (BOS … EOS, right-padded). */
  ids: Int32Array;
  T: number;
  /** [B,T] 1 = token, 0 = padding; null/absent = no padding. */
  attentionMask?: ArrayLike<number> | null;
  /** Preprocessed pixels [B,ch,S,S]. */
  pixels: Float32Array;
}

export interface StepSetup {
  student: ClipModel;
  /** Gradient container of the student (src/model/grads.ts createGrads); gradients accumulate into it. */
  grads: ClipWeights;
  /** Frozen teacher: distillation when set, plain contrastive training when null/absent. */
  teacher?: ClipModel | null;
  /** Towers of the student that are not trained (no backward, no gradients). */
  freeze?: Partial<Record<Tower, boolean>>;
  /** Do not train logit_scale. */
  freezeLogitScale?: boolean;
  /** Student masks (pruning by masking); masked modules get zero gradient. */
  masks?: Partial<Record<Tower, TowerMasks>>;
  loss?: Partial<LossWeights>;
  /** Data-parallel group: each batch is this rank's shard and the loss is that of the global batch (src/parallel). */
  world?: World;
  /** Per-item teacher outputs reused across steps, epochs and runs (src/train/teacher-cache.ts). */
  teacherCache?: TeacherCache | null;
}

/** Loss of a non-finite value: the caller should stop and keep its last good checkpoint. */
export class NonFiniteLossError extends MopeError {}

/**
 * A reusable step for one (student, teacher) pair: keeps the tapes between calls and the layer map m(j).
 * L_hid averages over the towers being trained: a frozen tower gets no gradient from it.
 */
export class TrainStep {
  readonly weights: LossWeights;
  private textTape: TextTape | undefined;
  private visionTape: VisionTape | undefined;
  private readonly layerMap: Partial<Record<Tower, number[]>> = {};
  private readonly lossFn: LossFn;

  constructor(
    readonly rt: Runtime,
    readonly setup: StepSetup,
  ) {
    this.weights = { ...DEFAULT_LOSS_WEIGHTS, ...setup.loss };
    this.lossFn = setup.world && setup.world.size > 1 ? shardedLoss(setup.world) : distillationLoss;
    const t = setup.teacher;
    if (t) {
      const E = setup.student.config.projectionDim;
      if (t.config.projectionDim !== E) {
        throw new ConfigError(
          `distillation: teacher projection dim ${t.config.projectionDim} differs from the student's ${E}; the embeddings must be comparable`,
        );
      }
      if (this.weights.wHid !== 0) {
        for (const tw of this.trainedTowers()) {
          this.layerMap[tw] = mapLayers(setup.student.config[tw], t.config[tw], tw);
        }
      }
    }
  }

  private trainedTowers(): Tower[] {
    return (['text', 'vision'] as const).filter((t) => !this.setup.freeze?.[t]);
  }

  /**
   * Forward, loss and backward of one (micro-)batch. Parameter gradients accumulate gradScale·∂L/∂θ (use 1/k for
   * k accumulated micro-batches). Returns the unscaled loss parts. Throws NonFiniteLossError before any backward
   * when the loss is NaN or infinite.
   */
  forwardBackward(batch: TrainBatch, gradScale = 1): LossParts {
    const { rt, setup } = this,
      { student, teacher } = setup;
    const { B, T, ids, pixels } = batch,
      am = batch.attentionMask ?? null;
    const E = student.config.projectionDim,
      frozen = setup.freeze ?? {};
    const mT = setup.masks?.text,
      mV = setup.masks?.vision;

    let tText: Float32Array, tImage: Float32Array;
    if (frozen.text) tText = textForward(rt, student, ids, B, T, { masks: mT, attentionMask: am }).embeds;
    else {
      this.textTape = textForwardTrain(rt, student, ids, B, T, this.textTape, { masks: mT, attentionMask: am });
      tText = this.textTape.head.embeds;
    }
    if (frozen.vision) tImage = visionForward(rt, student, pixels, B, { masks: mV }).embeds;
    else {
      this.visionTape = visionForwardTrain(rt, student, pixels, B, this.visionTape, { masks: mV });
      tImage = this.visionTape.head.embeds;
    }
    const st: PairEmbeddings = { image: tImage, text: tText, logitScale: student.weights.logitScale[0]! };

    let te: PairEmbeddings | null = null;
    const hidden: HiddenTower[] = [];
    const hiddenTowers: Tower[] = [];
    if (teacher) {
      const to = this.teacherOutputs(batch);
      te = { image: to.image, text: to.text, logitScale: teacher.weights.logitScale[0]! };
      if (to.textHidden && this.textTape) {
        const tp = this.textTape;
        hidden.push({
          B,
          T,
          C: student.config.text.hidden,
          teacher: to.textHidden,
          student: tp.layers.map((_, j) => tapeHidden(tp, j)),
          lengths: tp.poolIdx.map((p) => p + 1),
        });
        hiddenTowers.push('text');
      }
      if (to.visionHidden && this.visionTape) {
        const vp = this.visionTape;
        hidden.push({
          B,
          T: vp.T,
          C: student.config.vision.hidden,
          teacher: to.visionHidden,
          student: vp.layers.map((_, j) => tapeHidden(vp, j)),
        });
        hiddenTowers.push('vision');
      }
    }

    const w = this.weights,
      g = gradScale;
    const r = this.lossFn(rt, { student: st, teacher: te, hidden }, B, E, {
      wCon: w.wCon * g,
      wKd: w.wKd * g,
      wEmb: w.wEmb * g,
      wHid: w.wHid * g,
      temperature: w.temperature,
    });
    const parts: LossParts = {
      con: r.con,
      kd: r.kd,
      emb: r.emb,
      hid: r.hid,
      total: w.wCon * r.con + (te ? w.wKd * r.kd + w.wEmb * r.emb + w.wHid * r.hid : 0),
    };
    if (!Number.isFinite(parts.total)) {
      throw new NonFiniteLossError(
        `training loss is ${parts.total} (contrastive ${r.con}, kd ${r.kd}, emb ${r.emb}, hidden ${r.hid})`,
      );
    }
    const dh = (tw: Tower) => {
      const i = hiddenTowers.indexOf(tw);
      return i < 0 ? undefined : r.dHidden[i];
    };
    if (!frozen.text && this.textTape)
      textBackward(rt, student, this.textTape, r.dText, setup.grads.text, { dHidden: dh('text') });
    if (!frozen.vision && this.visionTape)
      visionBackward(rt, student, this.visionTape, r.dImage, setup.grads.vision, { dHidden: dh('vision') });
    if (!setup.freezeLogitScale) setup.grads.logitScale[0] += r.dLogitScale;
    return parts;
  }

  /** The teacher's outputs for batch: from setup.teacherCache where it has them, else computed. */
  private teacherOutputs(batch: TrainBatch): TeacherOutputs {
    const teacher = this.setup.teacher!,
      tc = teacher.config,
      needs: LayerNeeds = {};
    if (this.weights.wHid !== 0)
      for (const tw of ['text', 'vision'] as const) if (this.layerMap[tw]) needs[tw] = this.layerMap[tw];
    const compute = (b: TrainBatch): TeacherOutputs => {
      const th = needs.text ? this.teacherText(b, needs.text) : null;
      const vh = needs.vision ? this.teacherVision(b, needs.vision) : null;
      return {
        text: th
          ? th.embeds
          : textForward(this.rt, teacher, b.ids, b.B, b.T, { attentionMask: b.attentionMask ?? null }).embeds,
        image: vh ? vh.embeds : visionForward(this.rt, teacher, b.pixels, b.B).embeds,
        textHidden: th ? th.hidden : null,
        visionHidden: vh ? vh.hidden : null,
      };
    };
    const c = this.setup.teacherCache;
    if (!c) return compute(batch);
    const C = { text: tc.text.hidden, vision: tc.vision.hidden };
    return c.outputs(batch, needs, tc.projectionDim, C, visionTokens(teacher), compute);
  }

  /** Teacher text embeds plus copies of its streams after layers map[j]. */
  private teacherText(batch: TrainBatch, map: number[]): { embeds: Float32Array; hidden: Float32Array[] } {
    const { rt } = this,
      teacher = this.setup.teacher!;
    const x0 = textEmbed(rt, teacher, batch.ids, batch.B, batch.T);
    const hidden = collect(map, (onLayer) =>
      runLayers(rt, teacher, 'text', x0, batch.B, batch.T, {
        attentionMask: batch.attentionMask,
        inPlace: true,
        onLayer,
      }),
    );
    return { embeds: textHead(rt, teacher, x0, batch.ids, batch.B, batch.T), hidden };
  }

  private teacherVision(batch: TrainBatch, map: number[]): { embeds: Float32Array; hidden: Float32Array[] } {
    const { rt } = this,
      teacher = this.setup.teacher!;
    const x0 = visionEmbed(rt, teacher, batch.pixels, batch.B);
    const hidden = collect(map, (onLayer) =>
      runLayers(rt, teacher, 'vision', x0, batch.B, visionTokens(teacher), { inPlace: true, onLayer }),
    );
    return { embeds: visionHead(rt, teacher, x0, batch.B), hidden };
  }
}

/** Runs `run` with an onLayer hook that copies the stream after each layer in map, in map's order. */
function collect(map: number[], run: (onLayer: (l: number, x: Float32Array) => void) => void): Float32Array[] {
  const got = new Map<number, Float32Array>();
  const want = new Set(map);
  run((l, x) => {
    if (want.has(l)) got.set(l, x.slice());
  });
  return map.map((l) => got.get(l)!);
}

export interface AccumulatedStep {
  /** Loss parts averaged over the micro-batches. */
  loss: LossParts;
  info: StepInfo;
}

/**
 * One optimiser step over k micro-batches: zero-based accumulation of (1/k)·gradients, then opt.stepOnce().
 * `zero` clears the gradients first (pass the container's zeroGrads). Model weights are untouched when a loss is
 * non-finite (NonFiniteLossError propagates before the optimiser runs). `beforeUpdate` runs between the last
 * backward and the optimiser (the gradient all-reduce of a data-parallel run).
 */
export function accumulateStep(
  step: TrainStep,
  opt: Optimizer,
  micro: TrainBatch[],
  zero: () => void,
  beforeUpdate?: () => void,
): AccumulatedStep {
  if (micro.length === 0) throw new ConfigError('accumulateStep: no micro-batches');
  zero();
  const k = micro.length;
  const sum: LossParts = { total: 0, con: 0, kd: 0, emb: 0, hid: 0 };
  for (const b of micro) {
    const p = step.forwardBackward(b, 1 / k);
    for (const key of Object.keys(sum) as (keyof LossParts)[]) sum[key] += p[key] / k;
  }
  beforeUpdate?.();
  return { loss: sum, info: opt.stepOnce() };
}
