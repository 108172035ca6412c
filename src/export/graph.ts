// Small ONNX graph builder (initializers, nodes, graph inputs/outputs with dim_param axes) and its ModelProto
// serialisation, with optional external data. Dims: any; tensors are row-major with explicit dims.
import { closeSync, openSync, writeSync } from 'node:fs';
import { AttrType, F, OnnxType, PbWriter, type OnnxTypeCode } from './proto.ts';
import { f32ArrayToF16 } from '../io/fp16.ts';

export type TensorData = Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

export interface Initializer {
  name: string;
  type: OnnxTypeCode;
  dims: number[];
  /** FLOAT16 data is held as its bit patterns in a Uint16Array. */
  data: TensorData;
}

export type Attr =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] }
  | { kind: 'string'; v: string };

/** Attribute constructors: node(..., { axis: A.i(-1) }). */
export const A = {
  i: (v: number): Attr => ({ kind: 'int', v }),
  f: (v: number): Attr => ({ kind: 'float', v }),
  ints: (v: number[]): Attr => ({ kind: 'ints', v }),
  floats: (v: number[]): Attr => ({ kind: 'floats', v }),
  s: (v: string): Attr => ({ kind: 'string', v }),
};

export interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, Attr>;
  domain?: string;
}

export interface ValueDef {
  name: string;
  type: OnnxTypeCode;
  /** Numbers are fixed sizes; strings are dynamic axes (dim_param). */
  dims: (number | string)[];
}

export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: ValueDef[] = [];
  readonly outputs: ValueDef[] = [];
  private readonly used = new Set<string>();
  /** Element type of float activations and float initializers made with constF / floatInit. */
  floatType: OnnxTypeCode = OnnxType.FLOAT;

  constructor(readonly name: string) {}

  /** A fresh tensor name based on `hint`. */
  unique(hint: string): string {
    let n = hint,
      k = 1;
    while (this.used.has(n)) n = `${hint}_${k++}`;
    this.used.add(n);
    return n;
  }

  input(name: string, type: OnnxTypeCode, dims: (number | string)[]): string {
    this.used.add(name);
    this.inputs.push({ name, type, dims });
    return name;
  }

  output(name: string, type: OnnxTypeCode, dims: (number | string)[]): void {
    this.outputs.push({ name, type, dims });
  }

  init(hint: string, type: OnnxTypeCode, dims: number[], data: TensorData): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n)
      throw new RangeError(`initializer ${hint}: ${data.length} values for dims [${dims.join(',')}]`);
    const name = this.unique(hint);
    this.initializers.push({ name, type, dims, data });
    return name;
  }

  /** A float initializer in the graph's float type (converted to fp16 when floatType is FLOAT16). */
  floatInit(hint: string, dims: number[], data: Float32Array): string {
    if (this.floatType === OnnxType.FLOAT16) return this.init(hint, OnnxType.FLOAT16, dims, f32ArrayToF16(data));
    return this.init(hint, OnnxType.FLOAT, dims, data);
  }

  constF(hint: string, values: number[], dims: number[] = [values.length]): string {
    return this.floatInit(hint, dims, Float32Array.from(values));
  }

  constI64(hint: string, values: number[], dims: number[] = [values.length]): string {
    return this.init(hint, OnnxType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Adds a node; returns its output names (one per `nOut`). */
  nodeN(
    op: string,
    inputs: string[],
    nOut: number,
    attrs: Record<string, Attr> = {},
    hint = op,
    domain?: string,
  ): string[] {
    const name = this.unique(`${hint}_node`);
    const outputs = Array.from({ length: nOut }, (_, i) => this.unique(nOut === 1 ? hint : `${hint}_${i}`));
    this.nodes.push({ op, inputs, outputs, name, attrs, domain });
    return outputs;
  }

  /** Adds a single-output node; returns its output name. */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = op): string {
    return this.nodeN(op, inputs, 1, attrs, hint)[0]!;
  }

  /** Total bytes of initializer data. */
  initializerBytes(): number {
    return this.initializers.reduce((s, t) => s + t.data.byteLength, 0);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Serialisation

export interface ModelMeta {
  opset: number;
  irVersion: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

/** Where tensors ≥ minBytes go when external data is on: `location` relative to the .onnx file. */
export interface ExternalData {
  location: string;
  minBytes: number;
}

function bytesOf(d: TensorData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function tensorProto(t: Initializer, ext: { location: string; offset: number } | null): PbWriter {
  const w = new PbWriter();
  for (const d of t.dims) w.varint(F.tensor.dims, d);
  w.varint(F.tensor.dataType, t.type);
  w.string(F.tensor.name, t.name);
  if (ext) {
    const entry = (k: string, v: string) => new PbWriter().string(F.stringEntry.key, k).string(F.stringEntry.value, v);
    w.message(F.tensor.externalData, entry('location', ext.location));
    w.message(F.tensor.externalData, entry('offset', String(ext.offset)));
    w.message(F.tensor.externalData, entry('length', String(t.data.byteLength)));
    w.varint(F.tensor.dataLocation, 1);
  } else {
    w.bytes(F.tensor.rawData, bytesOf(t.data));
  }
  return w;
}

function attrProto(name: string, a: Attr): PbWriter {
  const w = new PbWriter().string(F.attr.name, name);
  switch (a.kind) {
    case 'int':
      w.varint(F.attr.i, a.v).varint(F.attr.type, AttrType.INT);
      break;
    case 'float':
      w.float(F.attr.f, a.v).varint(F.attr.type, AttrType.FLOAT);
      break;
    case 'ints':
      for (const v of a.v) w.varint(F.attr.ints, v);
      w.varint(F.attr.type, AttrType.INTS);
      break;
    case 'floats':
      for (const v of a.v) w.float(F.attr.floats, v);
      w.varint(F.attr.type, AttrType.FLOATS);
      break;
    case 'string':
      w.string(F.attr.s, a.v).varint(F.attr.type, AttrType.STRING);
      break;
  }
  return w;
}

function valueInfo(v: ValueDef): PbWriter {
  const shape = new PbWriter();
  for (const d of v.dims) {
    const dim = new PbWriter();
    if (typeof d === 'number') dim.varint(F.dim.value, d);
    else dim.string(F.dim.param, d);
    shape.message(F.shape.dim, dim);
  }
  const tt = new PbWriter().varint(F.tensorType.elemType, v.type).message(F.tensorType.shape, shape);
  const type = new PbWriter().message(F.type.tensorType, tt);
  return new PbWriter().string(F.valueInfo.name, v.name).message(F.valueInfo.type, type);
}

/**
 * Encodes the ModelProto. With `ext`, initializers of at least ext.minBytes are laid out in the external file
 * (4096-aligned offsets, onnx docs/ExternalData.md) and returned as `external` chunks to write beside it.
 */
export function encodeModel(
  g: GraphBuilder,
  meta: ModelMeta,
  ext?: ExternalData,
): { model: Uint8Array[]; external: Uint8Array[] } {
  const graph = new PbWriter();
  for (const n of g.nodes) {
    const nw = new PbWriter();
    for (const i of n.inputs) nw.string(F.node.input, i);
    for (const o of n.outputs) nw.string(F.node.output, o);
    nw.string(F.node.name, n.name).string(F.node.opType, n.op);
    for (const [k, a] of Object.entries(n.attrs)) nw.message(F.node.attribute, attrProto(k, a));
    if (n.domain) nw.string(F.node.domain, n.domain);
    graph.message(F.graph.node, nw);
  }
  graph.string(F.graph.name, g.name);
  const external: Uint8Array[] = [];
  let offset = 0;
  for (const t of g.initializers) {
    let where: { location: string; offset: number } | null = null;
    if (ext && t.data.byteLength >= ext.minBytes) {
      const pad = (4096 - (offset % 4096)) % 4096;
      if (pad > 0) external.push(new Uint8Array(pad));
      offset += pad;
      where = { location: ext.location, offset };
      external.push(bytesOf(t.data));
      offset += t.data.byteLength;
    }
    graph.message(F.graph.initializer, tensorProto(t, where));
  }
  for (const v of g.inputs) graph.message(F.graph.input, valueInfo(v));
  for (const v of g.outputs) graph.message(F.graph.output, valueInfo(v));

  const m = new PbWriter();
  m.varint(F.model.irVersion, meta.irVersion);
  m.string(F.model.producerName, meta.producerName ?? 'mope-clip');
  if (meta.producerVersion) m.string(F.model.producerVersion, meta.producerVersion);
  if (meta.docString) m.string(F.model.docString, meta.docString);
  m.message(F.model.graph, graph);
  m.message(F.model.opsetImport, new PbWriter().string(F.opset.domain, '').varint(F.opset.version, meta.opset));
  for (const [k, v] of Object.entries(meta.metadata ?? {})) {
    m.message(F.model.metadataProps, new PbWriter().string(F.stringEntry.key, k).string(F.stringEntry.value, v));
  }
  return { model: m.finish(), external };
}

/** Writes chunks to `path` (no rename: callers write into a temporary folder). Returns the byte count. */
export function writeChunks(path: string, chunks: Uint8Array[]): number {
  const fd = openSync(path, 'w');
  let n = 0;
  try {
    for (const c of chunks) {
      let o = 0;
      while (o < c.length) o += writeSync(fd, c, o, c.length - o);
      n += c.length;
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

/** ONNX IR version that goes with an ai.onnx opset (onnx helper VERSION_TABLE). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}
