// IEEE half (F16) and bfloat16 (BF16) <-> float32 conversion, scalar and whole arrays (element-wise, no dims).
// Narrowing rounds to nearest, ties to even; overflow gives ±Inf; NaN stays NaN (quiet), as PyTorch does.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bit pattern of one float32 value narrowed to IEEE binary16. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): keep the implicit bit and drop (14 - e) bits with correct rounding.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) !== 0)) h++;
    return sign | h; // a carry into bit 10 yields the smallest normal, which is correct
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry may reach 0x7c00 = Inf, also correct
  return sign | h;
}

let f16Table: Float32Array | null = null;

/** All 65536 half values widened to float32 (256 KiB, built on first use; widening is then a lookup). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) {
        bits[h] = sign >>> 0;
      } else {
        f32[0] = mant * 2 ** -24; // exact in float32
        bits[h] = (u32[0]! | sign) >>> 0;
      }
    } else if (exp === 31) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  f16Table = new Float32Array(bits.buffer);
  return f16Table;
}

/** One half bit pattern widened to a number. */
export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

/** Bit pattern of one float32 value narrowed to bfloat16 (the top 16 bits, rounded). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** Narrow a float32 array to half bit patterns. */
export function f32ArrayToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length < src.length)
    throw new RangeError(`f32ArrayToF16: dst has ${dst.length} elements, need ${src.length}`);
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < s.length; i++) {
    const bits = s[i]!;
    const e = ((bits >>> 23) & 0xff) - 112;
    if (e > 0 && e < 31) {
      // Normal half (the common case), branch-free round to nearest even: adding 0xfff plus the kept LSB
      // carries exactly when the dropped 13 bits exceed half (or equal it with an odd LSB); a carry out of the
      // mantissa bumps the exponent, and one out of the top exponent gives 0x7c00 = Inf, as it should.
      const x = bits & 0x7fffffff;
      dst[i] = ((bits >>> 16) & 0x8000) | (((x + 0xfff + ((x >>> 13) & 1)) >>> 13) - (112 << 10));
    } else {
      dst[i] = f32ToF16Bits(src[i]!);
    }
  }
  return dst;
}

/** Widen half bit patterns to float32. */
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (dst.length < src.length)
    throw new RangeError(`f16ArrayToF32: dst has ${dst.length} elements, need ${src.length}`);
  const t = f16ToF32Table();
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]!]!;
  return dst;
}

/** Narrow a float32 array to bfloat16 bit patterns. */
export function f32ArrayToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length < src.length)
    throw new RangeError(`f32ArrayToBf16: dst has ${dst.length} elements, need ${src.length}`);
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < s.length; i++) {
    const bits = s[i]!;
    dst[i] =
      (bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0
        ? ((bits >>> 16) | 0x40) & 0xffff
        : ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return dst;
}

/** Widen bfloat16 bit patterns to float32. */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (dst.length < src.length)
    throw new RangeError(`bf16ArrayToF32: dst has ${dst.length} elements, need ${src.length}`);
  const d = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) d[i] = src[i]! << 16;
  return dst;
}

/** Round every element of a float32 array through half precision in place (what an F16 save then load does). */
export function roundToF16InPlace(a: Float32Array): Float32Array {
  const t = f16ToF32Table();
  for (let i = 0; i < a.length; i++) a[i] = t[f32ToF16Bits(a[i]!)]!;
  return a;
}
