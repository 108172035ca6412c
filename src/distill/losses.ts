// Training losses of CLIP and MoPE-CLIP distillation, each with its gradient w.r.t. the
// student's UNNORMALISED embeddings (through the L2 normalisation), logit_scale and hidden states. The teacher
// side is constant (no gradients). Dims: B pairs, E projection dim, T tokens, C width, L_s student layers.
//
// With Î, T̂ (student) and Î′, T̂′ (teacher) the L2-normalised image / text embeddings:
//   S = exp(s)·Î·T̂ᵀ [B,B] (row i = image i, column j = text j), S′ = exp(s′)·Î′·T̂′ᵀ.
//   L_con = ½[CE(S, diag) + CE(Sᵀ, diag)], mean over rows.
//   L_kd  = τ²·½[KL(softmax(S′/τ) ‖ softmax(S/τ)) + KL(softmax(S′ᵀ/τ) ‖ softmax(Sᵀ/τ))], KL summed over a row,
//           averaged over rows.
//   L_emb = ½[mean_b ‖Î_b − Î′_b‖² + mean_b ‖T̂_b − T̂′_b‖²].
//   L_hid = mean over towers and over mapped layer pairs (j, m(j)) of the mean squared difference of the residual
//           stream after student layer j and teacher layer m(j); text rows BOS…EOS only, vision all tokens.
//   L = w_con·L_con + w_kd·L_kd + w_emb·L_emb + w_hid·L_hid, one weight per term.
// The paper (MoPE-CLIP, Lin et al. 2024) names the three kinds of term but does not state their weights, so the
// defaults (DEFAULT_LOSS_WEIGHTS) are ours, chosen by the small recipe search recorded in docs/recipe.md; τ = 1
// distils the teacher's own similarity distribution, whose sharpness is already set by its learned logit_scale.
// L_hid is a mean over matched layer pairs (and towers), so its size does not grow with depth. Softmax /
// log-sum-exp over the B×B matrices run in double.
import type { Runtime } from '../engine/runtime.ts';
import type { Kernels } from '../engine/kernels.ts';
import { referenceKernels } from '../engine/reference.ts';
import { ConfigError, ShapeError } from '../errors.ts';
import type { TowerConfig } from '../model/types.ts';

export interface LossWeights {
  /** Weight of L_con. */
  wCon: number;
  /** Weight of L_kd. */
  wKd: number;
  /** Weight of L_emb. */
  wEmb: number;
  /** Weight of L_hid (0 = no hidden-state distillation: no layer map is needed). */
  wHid: number;
  /** τ of L_kd. */
  temperature: number;
}

export const DEFAULT_LOSS_WEIGHTS: Readonly<LossWeights> = Object.freeze({
  wCon: 1,
  wKd: 1,
  wEmb: 1,
  wHid: 1,
  temperature: 1,
});

/** One side's unnormalised embeddings of B pairs. */
export interface PairEmbeddings {
  image: Float32Array; // [B,E]
  text: Float32Array; // [B,E]
  /** s (exp(s) scales the cosine similarities). */
  logitScale: number;
}

export interface LossResult {
  value: number;
  dImage: Float32Array; // [B,E] ∂/∂ unnormalised student image embeddings
  dText: Float32Array; // [B,E]
  dLogitScale: number;
}

/** Normalised embeddings of one side, plus the gradient accumulators of the student side. */
class Side {
  readonly img: Float32Array;
  readonly txt: Float32Array;
  readonly imgNorm: Float32Array;
  readonly txtNorm: Float32Array;
  readonly dImg: Float32Array;
  readonly dTxt: Float32Array;
  dLogitScale = 0;
  /** S = exp(s)·Î·T̂ᵀ, row-major [B,B], in double. */
  readonly S: Float64Array;

  constructor(
    rt: Runtime,
    readonly e: PairEmbeddings,
    readonly B: number,
    readonly E: number,
  ) {
    for (const [n, a] of [
      ['image', e.image],
      ['text', e.text],
    ] as const) {
      if (a.length !== B * E)
        throw new ShapeError(`loss: ${n} embeddings have ${a.length} elements, expected B·E = ${B}·${E} = ${B * E}`);
    }
    const k = rt.kernels;
    this.img = new Float32Array(B * E);
    this.txt = new Float32Array(B * E);
    this.imgNorm = new Float32Array(B);
    this.txtNorm = new Float32Array(B);
    k.l2normalize(this.img, this.imgNorm, e.image, B, E);
    k.l2normalize(this.txt, this.txtNorm, e.text, B, E);
    this.dImg = new Float32Array(B * E);
    this.dTxt = new Float32Array(B * E);
    const scale = Math.exp(e.logitScale);
    this.S = new Float64Array(B * B);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < B; j++) {
        let d = 0;
        for (let c = 0; c < E; c++) d += this.img[i * E + c]! * this.txt[j * E + c]!;
        this.S[i * B + j] = scale * d;
      }
    }
  }

  /** Back-propagates dS [B,B] (∂L/∂S) into dÎ, dT̂ and ds. */
  addDS(dS: Float64Array): void {
    const { B, E } = this,
      scale = Math.exp(this.e.logitScale);
    let ds = 0;
    for (let i = 0; i < B * B; i++) ds += dS[i]! * this.S[i]!;
    this.dLogitScale += ds;
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < B; j++) {
        const g = scale * dS[i * B + j]!;
        if (g === 0) continue;
        for (let c = 0; c < E; c++) {
          this.dImg[i * E + c] += g * this.txt[j * E + c]!;
          this.dTxt[j * E + c] += g * this.img[i * E + c]!;
        }
      }
    }
  }

  /** Gradients w.r.t. the unnormalised embeddings. */
  result(rt: Runtime, value: number): LossResult {
    const { B, E } = this;
    const dImage = new Float32Array(B * E),
      dText = new Float32Array(B * E);
    rt.kernels.l2normalizeBackward(dImage, this.dImg, this.img, this.imgNorm, B, E);
    rt.kernels.l2normalizeBackward(dText, this.dTxt, this.txt, this.txtNorm, B, E);
    return { value, dImage, dText, dLogitScale: this.dLogitScale };
  }
}

/**
 * Log-softmax of the B×B matrix z along rows (byRow) or columns, into out (same layout as z).
 */
function logSoftmax(z: Float64Array, B: number, byRow: boolean, out: Float64Array): void {
  for (let r = 0; r < B; r++) {
    const at = (c: number) => (byRow ? r * B + c : c * B + r);
    let mx = -Infinity;
    for (let c = 0; c < B; c++) mx = Math.max(mx, z[at(c)]!);
    let s = 0;
    for (let c = 0; c < B; c++) s += Math.exp(z[at(c)]! - mx);
    const lse = mx + Math.log(s);
    for (let c = 0; c < B; c++) out[at(c)] = z[at(c)]! - lse;
  }
}

/** L_con on `st`, weighted by w; returns the (unweighted) value and adds w·∂L_con/∂S to st. */
function addContrastive(st: Side, w: number): number {
  const B = st.B,
    S = st.S;
  const lr = new Float64Array(B * B),
    lc = new Float64Array(B * B);
  logSoftmax(S, B, true, lr);
  logSoftmax(S, B, false, lc);
  let v = 0;
  for (let i = 0; i < B; i++) v -= lr[i * B + i]! + lc[i * B + i]!;
  v /= 2 * B;
  if (w !== 0) {
    const dS = new Float64Array(B * B),
      f = w / (2 * B);
    for (let i = 0; i < B * B; i++) dS[i] = f * (Math.exp(lr[i]!) + Math.exp(lc[i]!));
    for (let i = 0; i < B; i++) dS[i * B + i] -= 2 * f;
    st.addDS(dS);
  }
  return v;
}

/** L_kd of student st against teacher te at temperature tau, weighted by w. */
function addKd(st: Side, te: Side, tau: number, w: number): number {
  const B = st.B;
  if (!(tau > 0)) throw new ConfigError(`distillation temperature must be > 0, got ${tau}`);
  const zs = st.S.map((x) => x / tau),
    zt = te.S.map((x) => x / tau);
  let v = 0;
  const dS = new Float64Array(B * B),
    f = (w * tau) / (2 * B);
  for (const byRow of [true, false]) {
    const ls = new Float64Array(B * B),
      lt = new Float64Array(B * B);
    logSoftmax(zs, B, byRow, ls);
    logSoftmax(zt, B, byRow, lt);
    for (let i = 0; i < B * B; i++) {
      const pt = Math.exp(lt[i]!);
      if (pt > 0) v += pt * (lt[i]! - ls[i]!);
      dS[i] += f * (Math.exp(ls[i]!) - pt);
    }
  }
  v *= (tau * tau) / (2 * B);
  if (w !== 0) st.addDS(dS);
  return v;
}

/** L_emb of st against te, weighted by w. */
function addEmb(st: Side, te: Side, w: number): number {
  const n = st.B * st.E;
  let a = 0,
    b = 0;
  const f = w / st.B;
  for (let i = 0; i < n; i++) {
    const di = st.img[i]! - te.img[i]!,
      dt = st.txt[i]! - te.txt[i]!;
    a += di * di;
    b += dt * dt;
    st.dImg[i] += f * di;
    st.dTxt[i] += f * dt;
  }
  return (a + b) / (2 * st.B);
}

function checkPair(student: PairEmbeddings, teacher: PairEmbeddings, B: number, E: number): void {
  if (teacher.image.length !== B * E || teacher.text.length !== B * E) {
    throw new ShapeError(
      `distillation: teacher embeddings have ${teacher.image.length} / ${teacher.text.length} elements, expected B·E = ${B * E} like the student's; ` +
        'teacher and student need the same projection dim',
    );
  }
  void student;
}

/** CLIP contrastive loss L_con. */
export function contrastiveLoss(rt: Runtime, student: PairEmbeddings, B: number, E: number): LossResult {
  const st = new Side(rt, student, B, E);
  return st.result(rt, addContrastive(st, 1));
}

/** Cross-modal distillation L_kd at temperature tau. */
export function kdLoss(
  rt: Runtime,
  student: PairEmbeddings,
  teacher: PairEmbeddings,
  B: number,
  E: number,
  tau: number,
): LossResult {
  checkPair(student, teacher, B, E);
  const st = new Side(rt, student, B, E),
    te = new Side(rt, teacher, B, E);
  return st.result(rt, addKd(st, te, tau, 1));
}

/** Uni-modal embedding distillation L_emb (logit_scale plays no part: dLogitScale = 0). */
export function embeddingLoss(
  rt: Runtime,
  student: PairEmbeddings,
  teacher: PairEmbeddings,
  B: number,
  E: number,
): LossResult {
  checkPair(student, teacher, B, E);
  const st = new Side(rt, student, B, E),
    te = new Side(rt, teacher, B, E);
  return st.result(rt, addEmb(st, te, 1));
}

/** One tower's hidden-state pairs for L_hid. */
export interface HiddenTower {
  B: number;
  T: number;
  C: number;
  /** Residual stream after student layer j, for each student layer j [B,T,C]. */
  student: Float32Array[];
  /** Residual stream after teacher layer m(j), in the same order [B,T,C]. */
  teacher: Float32Array[];
  /** Text: positions 0..len[b]−1 of row b count (len = EOS index + 1); null or absent = every position. */
  lengths?: Int32Array | null;
}

export interface HiddenLossResult {
  value: number;
  /** Per tower (input order), per student layer j: w·∂L_hid/∂(student stream after j) [B,T,C]. */
  dHidden: Float32Array[][];
}

/**
 * L_hid over the given towers, with gradients scaled by w. The elementwise work (difference, its square, the
 * gradient) runs in `k.diffSquares`: the native kernel from distillationLoss, the TypeScript twin by default.
 */
export function hiddenLoss(
  towers: HiddenTower[],
  w = 1,
  k: Pick<Kernels, 'diffSquares'> = referenceKernels,
): HiddenLossResult {
  let value = 0;
  const dHidden: Float32Array[][] = [];
  const nT = towers.length;
  for (const t of towers) {
    const { B, T, C } = t,
      L = t.student.length;
    if (t.teacher.length !== L)
      throw new ShapeError(`hidden loss: ${L} student layers but ${t.teacher.length} teacher layers`);
    let count = 0;
    for (let b = 0; b < B; b++) count += t.lengths ? Math.min(T, t.lengths[b]!) : T;
    const norm = 1 / (count * C * L * nT);
    const coef = 2 * w * norm;
    const grads: Float32Array[] = [];
    for (let j = 0; j < L; j++) {
      const s = t.student[j]!,
        te = t.teacher[j]!;
      if (s.length !== B * T * C || te.length !== B * T * C) {
        throw new ShapeError(
          `hidden loss: layer pair ${j} has ${s.length} / ${te.length} elements, expected B·T·C = ${B * T * C}`,
        );
      }
      const g = new Float32Array(B * T * C);
      let acc = 0;
      if (!t.lengths) acc = k.diffSquares(g, s, te, coef, B * T * C);
      else {
        // Text: only positions 0..len−1 of each row count; the rest keep a zero gradient.
        for (let b = 0; b < B; b++) {
          const lo = b * T * C,
            n = Math.min(T, t.lengths[b]!) * C;
          acc += k.diffSquares(g.subarray(lo, lo + n), s.subarray(lo, lo + n), te.subarray(lo, lo + n), coef, n);
        }
      }
      value += acc * norm;
      grads.push(g);
    }
    dHidden.push(grads);
  }
  return { value, dHidden };
}

/**
 * m(j) for each student layer j: the teacher layer with the same original index (student.layerMap[j] equals
 * teacher.layerMap[m(j)]). Throws ConfigError when the student cannot be a pruned copy of the teacher.
 */
export function mapLayers(student: TowerConfig, teacher: TowerConfig, tower: string): number[] {
  if (student.hidden !== teacher.hidden) {
    throw new ConfigError(
      `${tower} tower: student hidden size ${student.hidden} differs from the teacher's ${teacher.hidden}; hidden-state distillation ` +
        'needs a student pruned from this teacher (or set --w-hid 0)',
    );
  }
  return student.layerMap.map((orig, j) => {
    const t = teacher.layerMap.indexOf(orig);
    if (t < 0) {
      throw new ConfigError(
        `${tower} tower: student layer ${j} comes from original layer ${orig}, which the teacher (layer_map ${JSON.stringify(teacher.layerMap)}) ` +
          'does not have; the student is not derived from this teacher',
      );
    }
    return t;
  });
}

export interface DistillInputs {
  student: PairEmbeddings;
  /** Teacher embeddings; null = plain contrastive training (w_kd, w_emb and w_hid ignored). */
  teacher: PairEmbeddings | null;
  /** Hidden-state pairs per tower for L_hid (absent or empty: L_hid = 0). */
  hidden?: HiddenTower[];
}

export interface LossParts {
  total: number;
  con: number;
  kd: number;
  emb: number;
  hid: number;
}

export interface DistillResult extends LossParts {
  dImage: Float32Array;
  dText: Float32Array;
  dLogitScale: number;
  /** w_hid·∂L_hid/∂hidden, per tower of inputs.hidden, per student layer. */
  dHidden: Float32Array[][];
}

/** L = w_con·L_con + w_kd·L_kd + w_emb·L_emb + w_hid·L_hid with its gradients (weights default to DEFAULT_LOSS_WEIGHTS). */
export function distillationLoss(
  rt: Runtime,
  inputs: DistillInputs,
  B: number,
  E: number,
  weights: Partial<LossWeights> = {},
): DistillResult {
  const w = { ...DEFAULT_LOSS_WEIGHTS, ...weights };
  const st = new Side(rt, inputs.student, B, E);
  const con = addContrastive(st, w.wCon);
  let kd = 0,
    emb = 0,
    hid = 0;
  let dHidden: Float32Array[][] = [];
  if (inputs.teacher !== null) {
    checkPair(inputs.student, inputs.teacher, B, E);
    const te = new Side(rt, inputs.teacher, B, E);
    kd = addKd(st, te, w.temperature, w.wKd);
    emb = addEmb(st, te, w.wEmb);
    if (inputs.hidden !== undefined && inputs.hidden.length > 0) {
      const h = hiddenLoss(inputs.hidden, w.wHid, rt.kernels);
      hid = h.value;
      dHidden = h.dHidden;
    }
  }
  const total = w.wCon * con + (inputs.teacher !== null ? w.wKd * kd + w.wEmb * emb + w.wHid * hid : 0);
  const r = st.result(rt, total);
  return { total, con, kd, emb, hid, dImage: r.dImage, dText: r.dText, dLogitScale: r.dLogitScale, dHidden };
}
