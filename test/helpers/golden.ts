// Reads the PyTorch golden files (safetensors with F64 / F32 / I32 tensors, written by tools/ scripts) without
// the library's own safetensors reader, so a fault there cannot hide in the goldens. Floats come back as double.
import { readFileSync } from 'node:fs';

export interface Golden {
  f: Map<string, Float64Array>;
  i: Map<string, Int32Array>;
  shape: Map<string, number[]>;
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

export function readGolden(path: string): Golden {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Header;
  const g: Golden = { f: new Map(), i: new Map(), shape: new Map() };
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    const bytes = buf.subarray(8 + n + b, 8 + n + e);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    g.shape.set(name, info.shape);
    if (info.dtype === 'F64') g.f.set(name, new Float64Array(ab));
    else if (info.dtype === 'F32') g.f.set(name, Float64Array.from(new Float32Array(ab)));
    else if (info.dtype === 'I32') g.i.set(name, new Int32Array(ab));
    else throw new Error(`golden: unexpected dtype ${info.dtype} for ${name}`);
  }
  return g;
}
