// Optimisers over a name → (parameter, gradient) list (src/model/grads.ts): AdamW (decoupled weight decay, none on
// biases / LayerNorm / embeddings / logit_scale) through rt.kernels.adamw, SGD for debugging, linear warmup then
// cosine decay, global-norm gradient clipping, logit_scale clamp, and state as named Float32Arrays (safetensors).
// Dims: each parameter is a flat Float32Array of its HF shape.
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError, CheckpointError } from '../errors.ts';
import type { ParamRef } from '../model/grads.ts';

/** logit_scale is clamped to at most ln 100 after every step (CLIP). */
export const MAX_LOGIT_SCALE = Math.log(100);

export interface OptimConfig {
  optimizer: 'adamw' | 'sgd';
  /** Peak learning rate. */
  lr: number;
  /** Decoupled (AdamW) or L2 (SGD) weight decay, applied only to ParamRef.decay parameters. */
  weightDecay: number;
  /** Linear warmup steps: lr·s/warmup at step s = 1..warmup. */
  warmup: number;
  /** Steps of the whole run (the cosine heads to minLr at step totalSteps + 1, so every step trains); 0 = constant lr after warmup. */
  totalSteps: number;
  /** Floor of the cosine decay (default 0). */
  minLr: number;
  /** Global-norm clip threshold; 0 = off. */
  gradClip: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** SGD momentum (PyTorch semantics; 0 = plain SGD). */
  momentum: number;
}

/** CLIP's AdamW settings (β2 0.98, ε 1e-6; Radford et al. 2021), weight decay 0.1, no warmup or clipping. */
export const DEFAULT_OPTIM: Readonly<OptimConfig> = Object.freeze({
  optimizer: 'adamw',
  lr: 5e-5,
  weightDecay: 0.1,
  warmup: 0,
  totalSteps: 0,
  minLr: 0,
  gradClip: 0,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-6,
  momentum: 0,
});

/**
 * Learning rate of step s (1-based): linear warmup lr·s/warmup over `warmup` steps, then cosine decay at progress
 * p = (s − 1 − warmup)/(totalSteps − warmup), as Hugging Face's cosine-with-warmup schedule does with its 0-based
 * step count: the first step after warmup runs at the peak and the last step still has p < 1, so no step is spent
 * at minLr (a one-step run at warmup 0 uses the full lr).
 */
export function learningRate(cfg: Pick<OptimConfig, 'lr' | 'warmup' | 'totalSteps' | 'minLr'>, s: number): number {
  if (cfg.warmup > 0 && s <= cfg.warmup) return (cfg.lr * s) / cfg.warmup;
  if (cfg.totalSteps <= cfg.warmup) return cfg.lr;
  const p = Math.min(1, Math.max(0, (s - 1 - cfg.warmup) / (cfg.totalSteps - cfg.warmup)));
  return cfg.minLr + (cfg.lr - cfg.minLr) * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Global L2 norm of all gradients (accumulated in double). */
export function gradNorm(rt: Runtime, params: ParamRef[]): number {
  let s = 0;
  for (const p of params) s += rt.kernels.sumSquares(p.grad, p.grad.length);
  return Math.sqrt(s);
}

/**
 * Scales all gradients so that their global norm is at most maxNorm (PyTorch clip_grad_norm_: factor
 * maxNorm/(norm + 1e-6) when below 1). maxNorm 0 = off. Returns the norm before clipping.
 */
export function clipGradNorm(rt: Runtime, params: ParamRef[], maxNorm: number): number {
  const norm = gradNorm(rt, params);
  if (maxNorm > 0) {
    const f = maxNorm / (norm + 1e-6);
    if (f < 1) for (const p of params) rt.kernels.scale(p.grad, f, p.grad.length);
  }
  return norm;
}

/** Multiplies every gradient by f (e.g. 1/k after accumulating k micro-batches at unit weight). */
export function scaleGrads(rt: Runtime, params: ParamRef[], f: number): void {
  if (f === 1) return;
  for (const p of params) rt.kernels.scale(p.grad, f, p.grad.length);
}

export interface StepInfo {
  /** The step just taken (1-based). */
  step: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

function validate(cfg: OptimConfig): void {
  const bad = (what: string, v: unknown) => new ConfigError(`optimiser: ${what}, got ${String(v)}`);
  if (cfg.optimizer !== 'adamw' && cfg.optimizer !== 'sgd')
    throw bad("optimizer must be 'adamw' or 'sgd'", cfg.optimizer);
  if (!(cfg.lr >= 0) || !Number.isFinite(cfg.lr)) throw bad('lr must be a finite number ≥ 0', cfg.lr);
  if (!(cfg.weightDecay >= 0)) throw bad('weight decay must be ≥ 0', cfg.weightDecay);
  if (!Number.isInteger(cfg.warmup) || cfg.warmup < 0) throw bad('warmup must be an integer ≥ 0', cfg.warmup);
  if (!Number.isInteger(cfg.totalSteps) || cfg.totalSteps < 0)
    throw bad('total steps must be an integer ≥ 0', cfg.totalSteps);
  if (!(cfg.gradClip >= 0)) throw bad('grad clip must be ≥ 0 (0 = off)', cfg.gradClip);
  if (!(cfg.beta1 >= 0 && cfg.beta1 < 1) || !(cfg.beta2 >= 0 && cfg.beta2 < 1))
    throw bad('betas must be in [0, 1)', `${cfg.beta1}, ${cfg.beta2}`);
  if (!(cfg.eps > 0)) throw bad('eps must be > 0', cfg.eps);
  if (!(cfg.momentum >= 0 && cfg.momentum < 1)) throw bad('momentum must be in [0, 1)', cfg.momentum);
}

/**
 * AdamW or SGD over a fixed parameter list. step() clips, updates, clamps logit_scale and counts; it does not zero
 * the gradients (call zeroGrads). State: AdamW exp_avg / exp_avg_sq, SGD momentum buffers, by parameter name.
 */
export class Optimizer {
  readonly cfg: OptimConfig;
  /** Steps taken so far. */
  step = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(
    readonly rt: Runtime,
    readonly params: ParamRef[],
    cfg: Partial<OptimConfig> = {},
  ) {
    this.cfg = { ...DEFAULT_OPTIM, ...cfg };
    validate(this.cfg);
    const seen = new Set<string>();
    for (const p of params) {
      if (seen.has(p.name)) throw new ConfigError(`optimiser: parameter '${p.name}' listed twice`);
      seen.add(p.name);
      this.m.set(p.name, new Float32Array(p.param.length));
      if (this.cfg.optimizer === 'adamw') this.v.set(p.name, new Float32Array(p.param.length));
    }
  }

  /** One update from the current gradients. */
  stepOnce(): StepInfo {
    const { rt, cfg } = this,
      k = rt.kernels;
    const s = this.step + 1;
    const lr = learningRate(cfg, s);
    const norm = clipGradNorm(rt, this.params, cfg.gradClip);
    for (const p of this.params) {
      const n = p.param.length,
        wd = p.decay ? cfg.weightDecay : 0,
        m = this.m.get(p.name)!;
      if (cfg.optimizer === 'adamw') {
        k.adamw(p.param, p.grad, m, this.v.get(p.name)!, n, lr, cfg.beta1, cfg.beta2, cfg.eps, wd, s);
      } else {
        // PyTorch SGD: g += wd·p; buf = μ·buf + g (buf = g at the first step); p −= lr·buf. Mutates the gradient.
        if (wd > 0) k.residualAdd(p.grad, p.grad, p.param, wd, n);
        let d = p.grad;
        if (cfg.momentum > 0) {
          if (s > 1) k.scale(m, cfg.momentum, n);
          k.residualAdd(m, m, p.grad, 1, n);
          d = m;
        }
        k.residualAdd(p.param, p.param, d, -lr, n);
      }
      if (p.name === 'logit_scale' && p.param[0]! > MAX_LOGIT_SCALE) p.param[0] = MAX_LOGIT_SCALE;
    }
    this.step = s;
    return { step: s, lr, gradNorm: norm };
  }

  /**
   * The state as named tensors for a safetensors file: `optim.step` [1], `optim.exp_avg.<name>` and
   * `optim.exp_avg_sq.<name>` (AdamW) or `optim.momentum.<name>` (SGD). Arrays are the live buffers.
   */
  stateTensors(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    out.set('optim.step', new Float32Array([this.step]));
    const adam = this.cfg.optimizer === 'adamw';
    for (const p of this.params) {
      out.set(`optim.${adam ? 'exp_avg' : 'momentum'}.${p.name}`, this.m.get(p.name)!);
      if (adam) out.set(`optim.exp_avg_sq.${p.name}`, this.v.get(p.name)!);
    }
    return out;
  }

  /** Restores what stateTensors gave (copied in); every parameter's state must be present with its size. */
  loadStateTensors(t: Map<string, Float32Array>): void {
    const need = (name: string, n: number): Float32Array => {
      const a = t.get(name);
      if (a === undefined)
        throw new CheckpointError(
          `optimiser state: tensor '${name}' missing; was it saved with --optimizer ${this.cfg.optimizer} and the same frozen towers?`,
        );
      if (a.length !== n) throw new CheckpointError(`optimiser state: '${name}' has ${a.length} values, expected ${n}`);
      return a;
    };
    const step = need('optim.step', 1)[0]!;
    if (!Number.isInteger(step) || step < 0)
      throw new CheckpointError(`optimiser state: optim.step is ${step}, not a step count`);
    const adam = this.cfg.optimizer === 'adamw';
    for (const p of this.params) {
      this.m.get(p.name)!.set(need(`optim.${adam ? 'exp_avg' : 'momentum'}.${p.name}`, p.param.length));
      if (adam) this.v.get(p.name)!.set(need(`optim.exp_avg_sq.${p.name}`, p.param.length));
    }
    this.step = step;
  }
}
