// Precision variants of the exported graphs: linear layers and embedding lookups as fp32, fp16 or q8 nodes.
// Dims: x [..., in], HF weight W [out, in] (stored pre-transposed [in, out]), token table [V, C].
//
// fp16 (`_fp16` files): every float initializer and activation is float16; graph inputs and outputs stay
// float32 through Cast nodes (what onnxconverter's keep_io_types gives, and what transformers.js feeds:
// it never converts pixel_values to float16 itself). Attention scores are cast to float32 for the mask and the
// softmax, as HF computes softmax in float32.
//
// q8 (`_quantized` files), following onnxruntime's dynamic quantisation (IntegerOps, MatMulConstBOnly) that
// transformers.js' q8 files come from: each linear weight is int8, symmetric (zero point 0), with one scale
// per output column; activations are quantised at run time with DynamicQuantizeLinear (uint8, per tensor),
// multiplied with MatMulInteger into int32, then scaled back by x_scale·w_scale[col] and biased in float32.
// Activation-by-activation products (q·kᵀ, p·v), layer norms, softmax and the patch Conv stay float32, as in
// onnxruntime's MatMulConstBOnly mode (its uint8 ConvInteger is skipped: the patch Conv is a tiny share of the
// work). The token embedding table (the largest single tensor of the text tower) is int8 with one scale per row,
// gathered as int8 and dequantised after the lookup, so the file shrinks without a dequantised copy in memory.
import { ConfigError } from '../errors.ts';
import { A, type GraphBuilder } from './graph.ts';
import { OnnxType } from './proto.ts';

export type Precision = 'fp32' | 'fp16' | 'q8';

/** The quantisation names `--quantize` accepts, and the file suffix transformers.js looks for. */
export const VARIANTS = { fp16: '_fp16', q8: '_quantized' } as const;
export type VariantName = keyof typeof VARIANTS;

export function parseVariants(list: string | string[] | undefined): VariantName[] {
  const items = (Array.isArray(list) ? list : (list ?? '').split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const out: VariantName[] = [];
  for (const s of items) {
    if (!(s in VARIANTS)) {
      throw new ConfigError(
        `unknown quantisation "${s}"; use a comma-separated list of ${Object.keys(VARIANTS).join(', ')}`,
      );
    }
    if (!out.includes(s as VariantName)) out.push(s as VariantName);
  }
  return out;
}

/** HF [out, in] → [in, out] (row-major). */
export function transposeOI(w: Float32Array, out: number, inp: number): Float32Array {
  if (w.length !== out * inp) throw new RangeError(`transposeOI: ${w.length} values for [${out}, ${inp}]`);
  const t = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) {
    const row = o * inp;
    for (let i = 0; i < inp; i++) t[i * out + o] = w[row + i]!;
  }
  return t;
}

/** Symmetric int8 quantisation of a [rows, cols] matrix, one scale per column (axis 1) or per row (axis 0). */
export function quantizeInt8(
  w: Float32Array,
  rows: number,
  cols: number,
  axis: 0 | 1,
): { q: Int8Array; scale: Float32Array } {
  const n = axis === 1 ? cols : rows;
  const maxAbs = new Float32Array(n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(w[r * cols + c]!),
        k = axis === 1 ? c : r;
      if (a > maxAbs[k]!) maxAbs[k] = a;
    }
  }
  const scale = new Float32Array(n);
  for (let k = 0; k < n; k++) scale[k] = maxAbs[k]! > 0 ? maxAbs[k]! / 127 : 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = scale[axis === 1 ? c : r]!;
      q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(w[r * cols + c]! / s)));
    }
  }
  return { q, scale };
}

/**
 * y = x·Wᵀ + b for an HF linear weight W [out, in] and bias b [out] (or null): MatMul with the pre-transposed
 * [in, out] weight, or the q8 dynamic-quantisation pattern. Returns y's name ([..., out]).
 */
export function linear(
  g: GraphBuilder,
  prec: Precision,
  x: string,
  w: Float32Array,
  b: Float32Array | null,
  out: number,
  inp: number,
  hint: string,
): string {
  const wt = transposeOI(w, out, inp);
  let y: string;
  if (prec === 'q8') {
    const { q, scale } = quantizeInt8(wt, inp, out, 1);
    const qw = g.init(`${hint}.weight_quantized`, OnnxType.INT8, [inp, out], q);
    const ws = g.init(`${hint}.weight_scale`, OnnxType.FLOAT, [out], scale);
    const [xq, xs, xz] = g.nodeN('DynamicQuantizeLinear', [x], 3, {}, `${hint}.x_q`) as [string, string, string];
    const acc = g.node('MatMulInteger', [xq, qw, xz], {}, `${hint}.acc`);
    const accF = g.node('Cast', [acc], { to: A.i(OnnxType.FLOAT) }, `${hint}.acc_f`);
    const s = g.node('Mul', [xs, ws], {}, `${hint}.scale`);
    y = g.node('Mul', [accF, s], {}, `${hint}.mm`);
  } else {
    y = g.node('MatMul', [x, g.floatInit(`${hint}.weight_t`, [inp, out], wt)], {}, `${hint}.mm`);
  }
  if (b) y = g.node('Add', [y, g.floatInit(`${hint}.bias`, [out], b)], {}, `${hint}.out`);
  return y;
}

/** Rows of an embedding table [V, C] at int64 `ids` [...] → [..., C] (int8 rows + per-row scale under q8). */
export function embeddingGather(
  g: GraphBuilder,
  prec: Precision,
  table: Float32Array,
  V: number,
  C: number,
  ids: string,
  hint: string,
): string {
  if (prec !== 'q8') return g.node('Gather', [g.floatInit(hint, [V, C], table), ids], { axis: A.i(0) }, `${hint}.rows`);
  const { q, scale } = quantizeInt8(table, V, C, 0);
  const qt = g.init(`${hint}_quantized`, OnnxType.INT8, [V, C], q);
  const st = g.init(`${hint}_scale`, OnnxType.FLOAT, [V], scale);
  const rows = g.node(
    'Cast',
    [g.node('Gather', [qt, ids], { axis: A.i(0) }, `${hint}.rows_q`)],
    { to: A.i(OnnxType.FLOAT) },
    `${hint}.rows_f`,
  );
  const s = g.node(
    'Unsqueeze',
    [g.node('Gather', [st, ids], { axis: A.i(0) }, `${hint}.row_scale`), g.constI64(`${hint}.axes`, [-1])],
    {},
    `${hint}.row_scale_u`,
  );
  return g.node('Mul', [rows, s], {}, `${hint}.rows`);
}
