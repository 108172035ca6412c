// One pre-LN transformer block forward, in place on the residual stream x [B·T, C].
// Dims: B batch, T tokens, C width, NH_l heads, HS head size, F_l FFN width of layer l.
import type { Kernels, ActKind } from '../engine/kernels.ts';
import type { LayerWeights, TowerConfig } from './types.ts';
import type { Workspace } from './workspace.ts';
import type { LayerTape } from './tape.ts';

export interface LayerMasks {
  /** [NH_l] head scales, or null. */
  heads: Float32Array | null;
  /** [F_l] neuron scales, or null. */
  ffn: Float32Array | null;
  /** Scale of both branch outputs; 0 skips the layer. */
  scale: number;
}

export function actKind(cfg: TowerConfig): ActKind {
  return cfg.act === 'gelu' ? 1 : 0;
}

/**
 * x ← x + s·out_proj(attn(LN1(x))); x ← x + s·fc2(act(fc1(LN2(x)))).
 * A layer with 0 heads (or 0 FFN neurons) computes nothing in that branch but still adds the branch's
 * output bias, because that is what the branch outputs when all its heads (neurons) are masked: keeping the
 * bias makes structural removal and masking give the same function.
 * With a tape (training), the LN / qkv / probs / attention / fc1 outputs go to the tape's buffers instead of the
 * workspace, and LN statistics and the mid-layer stream are saved; the arithmetic is the same. tape.xIn is filled by
 * the caller (it is also the hidden state before the layer).
 */
export function layerForward(
  k: Kernels,
  cfg: TowerConfig,
  lw: LayerWeights,
  l: number,
  x: Float32Array,
  ws: Workspace,
  B: number,
  T: number,
  causal: boolean,
  keyMask: Float32Array | null,
  m: LayerMasks,
  tape?: LayerTape,
): void {
  const s = m.scale;
  if (s === 0) return;
  const N = B * T,
    C = cfg.hidden,
    HS = cfg.headDim;
  const NH = cfg.heads[l]!,
    D = NH * HS,
    F = cfg.ffn[l]!;
  const NC = N * C;
  const ln = tape ? tape.ln1 : ws.view(ws.ln, NC);
  const branch = ws.view(ws.branch, NC);

  if (D > 0) {
    const qkv = tape ? tape.qkv : ws.view(ws.qkv, N * 3 * D);
    const att = tape ? tape.att : ws.view(ws.att, N * D);
    k.layernorm(ln, tape ? tape.mean1 : null, tape ? tape.rstd1 : null, x, lw.ln1W, lw.ln1B, N, C, cfg.eps);
    k.linear(qkv, ln, lw.qkvW, lw.qkvB, N, C, 3 * D);
    k.attention(att, tape ? tape.probs : null, qkv, keyMask, m.heads, B, T, NH, HS, causal);
    k.linear(branch, att, lw.outW, lw.outB, N, D, C);
    k.residualAdd(x, x, branch, s, NC);
  } else {
    addRowBias(x, lw.outB, N, C, s);
  }

  if (tape) tape.xMid.set(x);
  if (F > 0) {
    const fc = ws.view(ws.fc, N * F);
    const ln2 = tape ? tape.ln2 : ln;
    k.layernorm(ln2, tape ? tape.mean2 : null, tape ? tape.rstd2 : null, x, lw.ln2W, lw.ln2B, N, C, cfg.eps);
    const pre = tape ? tape.pre : fc;
    k.linear(pre, ln2, lw.fc1W, lw.fc1B, N, C, F);
    k.activation(fc, pre, m.ffn, N, F, actKind(cfg));
    k.linear(branch, fc, lw.fc2W, lw.fc2B, N, F, C);
    k.residualAdd(x, x, branch, s, NC);
  } else {
    addRowBias(x, lw.fc2B, N, C, s);
  }
}

function addRowBias(x: Float32Array, bias: Float32Array, N: number, C: number, s: number): void {
  for (let n = 0, o = 0; n < N; n++, o += C) {
    for (let c = 0; c < C; c++) x[o + c] += s * bias[c];
  }
}
