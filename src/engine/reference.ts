// Naive TypeScript reference of every kernel in src/engine/kernels.ts (same signatures, same argument
// order), written to be obviously correct rather than fast: plain loops, double accumulation.
// Dims: M N K (GEMM), N rows, C width, IC/OC, F, B T NH HS (attention), ch H W P (images).
import type { ActKind, F32, Kernels } from './kernels.ts';
import { resampleColsU8, resampleRowsU8 } from './resample.ts';

/** erf in double: erf(x) = 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)), a series of positive terms. */
export function erf(x: number): number {
  if (x === 0) return 0;
  if (Math.abs(x) >= 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

/** erfc in double; the continued fraction keeps relative precision in the tail where 1 − erf cancels. */
export function erfc(x: number): number {
  if (x < 2) return 1 - erf(x);
  // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from the back
  let f = x;
  for (let n = 200; n >= 1; n--) f = x + n / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

let threads = 1;

function gemm(
  c: F32,
  a: F32,
  b: F32,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? a[k * M + m] : a[m * K + k];
        const bv = transB ? b[n * K + k] : b[k * N + n];
        s += av * bv;
      }
      // BLAS semantics: beta = 0 means C is not read
      c[m * N + n] = beta === 0 ? alpha * s : alpha * s + beta * c[m * N + n];
    }
  }
}

export const referenceKernels: Kernels = {
  resampleRows: resampleRowsU8,
  resampleCols: resampleColsU8,
  setThreads(n: number): void {
    threads = n;
  },
  getThreads(): number {
    return threads;
  },

  gemm,

  gemmStridedBatched(c, a, b, batch, M, N, K, transA, transB, alpha, beta, strideA, strideB, strideC): void {
    for (let i = 0; i < batch; i++) {
      gemm(
        c.subarray(i * strideC),
        a.subarray(i * strideA),
        b.subarray(i * strideB),
        M,
        N,
        K,
        transA,
        transB,
        alpha,
        beta,
      );
    }
  },

  linear(out, inp, weight, bias, N, IC, OC): void {
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < OC; o++) {
        let s = bias ? bias[o] : 0;
        for (let i = 0; i < IC; i++) s += inp[n * IC + i] * weight[o * IC + i];
        out[n * OC + o] = s;
      }
    }
  },

  layernorm(out, mean, rstd, inp, weight, bias, N, C, eps): void {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += inp[n * C + i];
      const mu = s / C;
      let v = 0;
      for (let i = 0; i < C; i++) v += (inp[n * C + i] - mu) ** 2;
      const rs = 1 / Math.sqrt(v / C + eps);
      if (mean) mean[n] = mu;
      if (rstd) rstd[n] = rs;
      for (let i = 0; i < C; i++) out[n * C + i] = (inp[n * C + i] - mu) * rs * weight[i] + bias[i];
    }
  },

  activation(out, inp, mask, N, F, kind: ActKind): void {
    for (let n = 0; n < N; n++) {
      for (let f = 0; f < F; f++) {
        const x = inp[n * F + f];
        const y = kind === 0 ? x / (1 + Math.exp(-1.702 * x)) : 0.5 * x * erfc(-x / Math.SQRT2);
        out[n * F + f] = y * (mask ? mask[f] : 1);
      }
    }
  },

  attention(out, probs, qkv, keyMask, headMask, B, T, NH, HS, causal): void {
    const C = NH * HS;
    const scale = 1 / Math.sqrt(HS);
    const at = (b: number, t: number, part: number, h: number, e: number) =>
      qkv[(b * T + t) * 3 * C + part * C + h * HS + e];
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        for (let i = 0; i < T; i++) {
          const allowed: boolean[] = [];
          const s: number[] = [];
          for (let j = 0; j < T; j++) {
            allowed.push(!(causal && j > i) && !(keyMask && keyMask[b * T + j] === 0));
            let d = 0;
            for (let e = 0; e < HS; e++) d += at(b, i, 0, h, e) * at(b, j, 1, h, e);
            s.push(d * scale);
          }
          let mx = -Infinity;
          for (let j = 0; j < T; j++) if (allowed[j]) mx = Math.max(mx, s[j]);
          const p: number[] = new Array(T).fill(0);
          if (mx !== -Infinity) {
            let sum = 0;
            for (let j = 0; j < T; j++) if (allowed[j]) sum += Math.exp(s[j] - mx);
            for (let j = 0; j < T; j++) if (allowed[j]) p[j] = Math.exp(s[j] - mx) / sum;
          }
          if (probs) for (let j = 0; j < T; j++) probs[((b * NH + h) * T + i) * T + j] = p[j];
          const hm = headMask ? headMask[h] : 1;
          for (let e = 0; e < HS; e++) {
            let o = 0;
            for (let j = 0; j < T; j++) o += p[j] * at(b, j, 2, h, e);
            out[(b * T + i) * C + h * HS + e] = o * hm;
          }
        }
      }
    }
  },

  residualAdd(out, a, b, scale, N): void {
    for (let i = 0; i < N; i++) out[i] = a[i] + scale * b[i];
  },

  l2normalize(out, norms, inp, N, C): void {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += inp[n * C + i] ** 2;
      const nrm = Math.max(Math.sqrt(s), 1e-12);
      if (norms) norms[n] = nrm;
      for (let i = 0; i < C; i++) out[n * C + i] = inp[n * C + i] / nrm;
    }
  },

  im2patch(out, pixels, B, ch, H, W, P): void {
    const GH = H / P;
    const GW = W / P;
    for (let b = 0; b < B; b++)
      for (let gy = 0; gy < GH; gy++)
        for (let gx = 0; gx < GW; gx++)
          for (let c = 0; c < ch; c++)
            for (let y = 0; y < P; y++)
              for (let x = 0; x < P; x++)
                out[((b * GH + gy) * GW + gx) * ch * P * P + (c * P + y) * P + x] =
                  pixels[((b * ch + c) * H + gy * P + y) * W + gx * P + x];
  },

  // ---- backward kernels: parameter gradients accumulate (+=, summed over rows in double first), activation
  // gradients overwrite (=). Written without Float32 temporaries, so they also run on Float64Arrays (the
  // finite-difference tests call them that way).

  linearBackward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC): void {
    if (dinp) {
      for (let n = 0; n < N; n++) {
        for (let i = 0; i < IC; i++) {
          let s = 0;
          for (let o = 0; o < OC; o++) s += dout[n * OC + o] * weight[o * IC + i];
          dinp[n * IC + i] = s;
        }
      }
    }
    if (dweight) {
      for (let o = 0; o < OC; o++) {
        for (let i = 0; i < IC; i++) {
          let s = 0;
          for (let n = 0; n < N; n++) s += dout[n * OC + o] * inp[n * IC + i];
          dweight[o * IC + i] += s;
        }
      }
    }
    if (dbias) {
      for (let o = 0; o < OC; o++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += dout[n * OC + o];
        dbias[o] += s;
      }
    }
  },

  layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C): void {
    const dw = new Float64Array(C);
    const db = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      // the saved mean may be rounded (float); correct it with the exact row mean, as the forward does
      let r = 0;
      for (let i = 0; i < C; i++) r += inp[n * C + i] - mean[n];
      const mu = mean[n] + r / C;
      const rs = rstd[n];
      const xhat: number[] = [];
      let m1 = 0;
      let m2 = 0;
      for (let i = 0; i < C; i++) {
        const xh = (inp[n * C + i] - mu) * rs;
        const g = dout[n * C + i];
        xhat.push(xh);
        m1 += g * weight[i];
        m2 += g * weight[i] * xh;
        dw[i] += g * xh;
        db[i] += g;
      }
      m1 /= C;
      m2 /= C;
      for (let i = 0; i < C; i++) dinp[n * C + i] = (dout[n * C + i] * weight[i] - m1 - xhat[i] * m2) * rs;
    }
    for (let i = 0; i < C; i++) {
      dweight[i] += dw[i];
      dbias[i] += db[i];
    }
  },

  activationBackward(dinp, dout, inp, mask, N, F, kind: ActKind): void {
    for (let n = 0; n < N; n++) {
      for (let f = 0; f < F; f++) {
        const x = inp[n * F + f];
        let d: number;
        if (kind === 0) {
          const s = 1 / (1 + Math.exp(-1.702 * x));
          d = s + 1.702 * x * s * (1 - s);
        } else {
          const cdf = 0.5 * erfc(-x / Math.SQRT2);
          const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
          d = cdf + x * pdf;
        }
        dinp[n * F + f] = dout[n * F + f] * d * (mask ? mask[f] : 1);
      }
    }
  },

  attentionBackward(dqkv, dout, probs, qkv, headMask, B, T, NH, HS): void {
    const C = NH * HS;
    const scale = 1 / Math.sqrt(HS);
    const idx = (b: number, t: number, part: number, h: number, e: number) =>
      (b * T + t) * 3 * C + part * C + h * HS + e;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        const hm = headMask ? headMask[h] : 1;
        const P = (i: number, j: number) => probs[((b * NH + h) * T + i) * T + j];
        const dO = (i: number, e: number) => hm * dout[(b * T + i) * C + h * HS + e];
        // dS = P ⊙ (dP − rowsum(dP ⊙ P)), dP = dO·vᵀ
        const dS: number[][] = [];
        for (let i = 0; i < T; i++) {
          const dP: number[] = [];
          let r = 0;
          for (let j = 0; j < T; j++) {
            let d = 0;
            for (let e = 0; e < HS; e++) d += dO(i, e) * qkv[idx(b, j, 2, h, e)];
            dP.push(d);
            r += d * P(i, j);
          }
          dS.push(dP.map((d, j) => P(i, j) * (d - r)));
        }
        for (let t = 0; t < T; t++) {
          for (let e = 0; e < HS; e++) {
            let dq = 0;
            let dk = 0;
            let dv = 0;
            for (let u = 0; u < T; u++) {
              dq += dS[t][u] * qkv[idx(b, u, 1, h, e)];
              dk += dS[u][t] * qkv[idx(b, u, 0, h, e)];
              dv += P(u, t) * dO(u, e);
            }
            dqkv[idx(b, t, 0, h, e)] = dq * scale;
            dqkv[idx(b, t, 1, h, e)] = dk * scale;
            dqkv[idx(b, t, 2, h, e)] = dv;
          }
        }
      }
    }
  },

  l2normalizeBackward(dinp, dout, out, norms, N, C): void {
    for (let n = 0; n < N; n++) {
      let d = 0;
      for (let i = 0; i < C; i++) d += out[n * C + i] * dout[n * C + i];
      // a norm floored at 1e-12 by the forward is a constant (out = x/1e-12): no projection
      if (norms[n] <= 1e-12) d = 0;
      for (let i = 0; i < C; i++) dinp[n * C + i] = (dout[n * C + i] - out[n * C + i] * d) / norms[n];
    }
  },

  im2patchBackward(dpixels, dpatches, B, ch, H, W, P): void {
    const GH = H / P;
    const GW = W / P;
    for (let b = 0; b < B; b++)
      for (let gy = 0; gy < GH; gy++)
        for (let gx = 0; gx < GW; gx++)
          for (let c = 0; c < ch; c++)
            for (let y = 0; y < P; y++)
              for (let x = 0; x < P; x++)
                dpixels[((b * ch + c) * H + gy * P + y) * W + gx * P + x] =
                  dpatches[((b * GH + gy) * GW + gx) * ch * P * P + (c * P + y) * P + x];
  },

  adamw(param, grad, m, v, N, lr, beta1, beta2, eps, weightDecay, step): void {
    for (let i = 0; i < N; i++) {
      const g = grad[i];
      const p = param[i] * (1 - lr * weightDecay);
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const mhat = m[i] / (1 - beta1 ** step);
      const vhat = v[i] / (1 - beta2 ** step);
      param[i] = p - (lr * mhat) / (Math.sqrt(vhat) + eps);
    }
  },

  sumSquares(x, N): number {
    let s = 0;
    for (let i = 0; i < N; i++) s += x[i] * x[i];
    return s;
  },

  diffSquares(g, a, b, coef, N): number {
    const c = Math.fround(coef); // the native kernel's float coefficient
    let s = 0;
    for (let i = 0; i < N; i++) {
      const d = Math.fround(a[i] - b[i]);
      g[i] = c * d;
      s += d * d;
    }
    return s;
  },

  scale(x, s, N): void {
    for (let i = 0; i < N; i++) x[i] *= s;
  },
};

// ---- reference twin of the oneDNN GEMM (native/gemm_dnnl.c, src/engine/precision.ts) ----

const bf16Scratch = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16Scratch.buffer);

/** x rounded to bf16 (8 significant bits), to nearest even, as a float. */
export function roundBf16(x: number): number {
  bf16Scratch[0] = x;
  const u = bf16Bits[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return x;
  bf16Bits[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return bf16Scratch[0]!;
}

/**
 * C[M,N] = op(A)·op(B) (+ bias[N]) + beta·C, the products of bf16-rounded A and B (when bf16) summed in
 * double: the twin of gemmDnnl with b given (packing changes the layout, not the values).
 */
export function gemmDnnlReference(
  c: F32,
  a: F32,
  b: F32,
  bias: F32 | null,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  beta: number,
  bf16: boolean,
): void {
  const r = bf16 ? roundBf16 : (x: number) => x;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++)
        s += r(transA ? a[k * M + m]! : a[m * K + k]!) * r(transB ? b[n * K + k]! : b[k * N + n]!);
      c[m * N + n] = beta === 0 ? s : s + beta * c[m * N + n]!;
    }
  }
}
