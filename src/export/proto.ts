// Minimal protobuf writer for the ONNX messages we emit (ModelProto, GraphProto, NodeProto, TensorProto, ...),
// field numbers from onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto). No dims: bytes only. Output is a list of chunks so that
// large raw_data buffers are never copied into one giant array.

/** Protobuf wire types. */
const VARINT = 0,
  I32 = 5,
  LEN = 2;

/**
 * An encoded message as a list of byte chunks. Small scalar fields go to a growing scratch buffer; large byte
 * fields are appended as their own chunk (zero copy).
 */
export class PbWriter {
  readonly chunks: Uint8Array[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;
  private done = 0;

  /** Total encoded length in bytes. */
  get length(): number {
    return this.done + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.slice(0, this.pos));
    this.done += this.pos;
    this.pos = 0;
  }

  private rawVarint(v: number | bigint): void {
    this.ensure(10);
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      while (v >= 0x80) {
        this.buf[this.pos++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.buf[this.pos++] = v;
      return;
    }
    // Negative int64 (e.g. axis = -1): two's complement over 64 bits, always 10 bytes.
    let b = BigInt.asUintN(64, BigInt(v));
    while (b >= 0x80n) {
      this.buf[this.pos++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.pos++] = Number(b);
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** int32 / int64 / enum / bool field. */
  varint(field: number, v: number | bigint): this {
    if (typeof v === 'number' && !Number.isInteger(v))
      throw new RangeError(`protobuf field ${field}: ${v} is not an integer`);
    this.tag(field, VARINT);
    this.rawVarint(v);
    return this;
  }

  /** float field (fixed 32-bit, little-endian). */
  float(field: number, v: number): this {
    this.tag(field, I32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).setFloat32(0, v, true);
    this.pos += 4;
    return this;
  }

  /** bytes field. Buffers of 4 KiB and more are kept by reference as their own chunk. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, LEN);
    this.rawVarint(data.length);
    if (data.length >= 4096) {
      this.flush();
      this.chunks.push(data);
      this.done += data.length;
    } else {
      this.ensure(data.length);
      this.buf.set(data, this.pos);
      this.pos += data.length;
    }
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  /** Embedded message field. */
  message(field: number, m: PbWriter): this {
    this.tag(field, LEN);
    this.rawVarint(m.length);
    this.flush();
    m.flush();
    for (const c of m.chunks) this.chunks.push(c);
    this.done += m.length;
    return this;
  }

  /** Packed repeated varints (int64 lists). */
  packedVarints(field: number, values: ArrayLike<number | bigint>): this {
    const inner = new PbWriter();
    for (let i = 0; i < values.length; i++) inner.rawVarint(values[i]!);
    inner.flush();
    this.tag(field, LEN);
    this.rawVarint(inner.length);
    this.flush();
    for (const c of inner.chunks) this.chunks.push(c);
    this.done += inner.length;
    return this;
  }

  /** Packed repeated floats. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
    return this.bytes(field, b);
  }

  /** All chunks (call once, when the message is complete). */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  /** The message as one contiguous array (tests and small messages). */
  toBytes(): Uint8Array {
    const chunks = this.finish();
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** ONNX TensorProto.DataType values. */
export const OnnxType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;
export type OnnxTypeCode = (typeof OnnxType)[keyof typeof OnnxType];

/** ONNX AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** Field numbers (onnx.proto), grouped by message. */
export const F = {
  model: {
    irVersion: 1,
    producerName: 2,
    producerVersion: 3,
    domain: 4,
    modelVersion: 5,
    docString: 6,
    graph: 7,
    opsetImport: 8,
    metadataProps: 14,
  },
  opset: { domain: 1, version: 2 },
  stringEntry: { key: 1, value: 2 },
  graph: { node: 1, name: 2, initializer: 5, docString: 10, input: 11, output: 12, valueInfo: 13 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5, docString: 6, domain: 7 },
  attr: { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, strings: 9, type: 20 },
  tensor: {
    dims: 1,
    dataType: 2,
    floatData: 4,
    int32Data: 5,
    int64Data: 7,
    name: 8,
    rawData: 9,
    externalData: 13,
    dataLocation: 14,
  },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const;
