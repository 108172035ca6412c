// safetensors reader (lazy: header first, tensor bytes on demand via fs.readSync) and atomic writer (F32/F16/BF16/I64).
// Dims: none of the model's; a tensor is a dtype, a row-major shape and a byte range [BEGIN, END) of the data buffer.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { CheckpointError } from '../errors.ts';
import { writeAll, writeWithFdAtomic } from './atomic.ts';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from './fp16.ts';

/** Every dtype of the format, in the format's alignment order (ascending); the writer sorts by it, descending. */
export const DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;
export type Dtype = (typeof DTYPES)[number];

const BITS: Record<Dtype, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte offsets relative to the start of the data buffer (file offset 8 + N); end exclusive. */
  begin: number;
  end: number;
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function dtypeBits(d: Dtype): number {
  return BITS[d];
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

const READ_CHUNK = 1 << 30; // readSync refuses lengths past 2 GiB

function readFully(fd: number, dst: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < dst.length) {
    const want = Math.min(READ_CHUNK, dst.length - done);
    const got = readSync(fd, dst, done, want, position + done);
    if (got === 0) {
      throw new CheckpointError(
        `${file}: unexpected end of file while reading ${what} (read ${done} of ${dst.length} bytes); the file is truncated`,
      );
    }
    done += got;
  }
}

/**
 * Top-level keys of a JSON object, in order, including duplicates (JSON.parse silently keeps the last one,
 * but the format forbids duplicate tensor names). Assumes `text` already parsed as a JSON object.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  let lastString: string | null = null;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      lastString = depth === 1 ? text.slice(start, i) : null;
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === ':' && depth === 1 && lastString !== null) keys.push(JSON.parse(lastString) as string);
    if (c !== ' ' && c !== '\n' && c !== '\r' && c !== '\t') lastString = c === '"' ? lastString : null;
    i++;
  }
  return keys;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * A safetensors file opened for lazy reading: the header is parsed and fully validated on open;
 * tensor bytes are read only when asked for. Call close() when done (or use `using`-style try/finally).
 */
export class SafetensorsReader {
  readonly path: string;
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  readonly headerLength: number;
  readonly fileSize: number;
  private fd: number | null;

  private constructor(
    path: string,
    fd: number,
    headerLength: number,
    fileSize: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.fd = fd;
    this.headerLength = headerLength;
    this.fileSize = fileSize;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsReader {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new CheckpointError(`${path}: cannot open safetensors file (${(e as Error).message})`);
    }
    try {
      const { size } = fstatSync(fd);
      const { headerLength, tensors, metadata } = parseHeader(path, fd, size);
      return new SafetensorsReader(path, fd, headerLength, size, tensors, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`${this.path}: no tensor named '${name}'`);
    return t;
  }

  /** The raw little-endian bytes of one tensor, in a fresh 8-byte-aligned buffer. */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    if (this.fd === null) throw new CheckpointError(`${this.path}: reader is closed (reading '${name}')`);
    const n = t.end - t.begin;
    const buf = new Uint8Array(new ArrayBuffer(Math.ceil(n / 8) * 8), 0, n);
    readFully(this.fd, buf, 8 + this.headerLength + t.begin, this.path, `tensor '${name}'`);
    return buf;
  }

  /** One floating-point tensor (F32, F16 or BF16) as a fresh Float32Array. Other dtypes are rejected. */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    const n = numel(t.shape);
    if (t.dtype === 'F32') {
      assertLittleEndianHost();
      const bytes = this.readBytes(name);
      return new Float32Array(bytes.buffer, 0, n);
    }
    if (t.dtype === 'F16' || t.dtype === 'BF16') {
      const bytes = this.readBytes(name);
      const halves = new Uint16Array(bytes.buffer, 0, n);
      return t.dtype === 'F16' ? f16ArrayToF32(halves) : bf16ArrayToF32(halves);
    }
    throw new CheckpointError(
      `${this.path}: tensor '${name}' has dtype ${t.dtype}; expected a floating-point dtype (F32, F16 or BF16)`,
    );
  }

  /** One I64 tensor (e.g. legacy position_ids) as a BigInt64Array. */
  readI64(name: string): BigInt64Array {
    const t = this.info(name);
    if (t.dtype !== 'I64') {
      throw new CheckpointError(`${this.path}: tensor '${name}' has dtype ${t.dtype}; expected I64`);
    }
    assertLittleEndianHost();
    return new BigInt64Array(this.readBytes(name).buffer, 0, numel(t.shape));
  }
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new CheckpointError('safetensors: big-endian hosts are not supported');
}

function parseHeader(
  path: string,
  fd: number,
  size: number,
): { headerLength: number; tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (size < 8) {
    throw new CheckpointError(
      `${path}: file is ${size} bytes, too small for a safetensors file (expected at least the 8-byte header length)`,
    );
  }
  const lenBuf = new Uint8Array(8);
  readFully(fd, lenBuf, 0, path, 'the header length');
  const n64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(
      `${path}: header length ${n64} exceeds the limit of ${MAX_HEADER_BYTES} bytes; this is not a valid safetensors file`,
    );
  }
  const n = Number(n64);
  if (8 + n > size) {
    throw new CheckpointError(
      `${path}: header length ${n} runs past the end of the file (8 + ${n} > file size ${size}); the file is truncated or not safetensors`,
    );
  }
  const headerBytes = new Uint8Array(n);
  readFully(fd, headerBytes, 8, path, 'the header');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError(`${path}: header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CheckpointError(
      `${path}: header must be a JSON object, found ${Array.isArray(json) ? 'an array' : typeof json}`,
    );
  }
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) throw new CheckpointError(`${path}: header has a duplicate entry '${k}'`);
    seen.add(k);
  }

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new CheckpointError(
          `${path}: __metadata__ must be an object of string values, found ${JSON.stringify(v)}`,
        );
      }
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== 'string') {
          throw new CheckpointError(
            `${path}: __metadata__ field '${mk}' must be a string, found ${JSON.stringify(mv)}`,
          );
        }
        metadata[mk] = mv;
      }
      continue;
    }
    const where = `${path}: tensor '${name}'`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new CheckpointError(`${where}: header entry must be an object with dtype, shape and data_offsets`);
    }
    const e = v as Record<string, unknown>;
    for (const f of ['dtype', 'shape', 'data_offsets']) {
      if (!(f in e)) throw new CheckpointError(`${where}: header entry is missing '${f}'`);
    }
    if (!isDtype(e.dtype)) {
      throw new CheckpointError(
        `${where}: unknown dtype ${JSON.stringify(e.dtype)}; expected one of ${DTYPES.join(', ')}`,
      );
    }
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
      throw new CheckpointError(
        `${where}: shape must be an array of non-negative integers, found ${JSON.stringify(e.shape)}`,
      );
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isNonNegInt)) {
      throw new CheckpointError(
        `${where}: data_offsets must be [BEGIN, END] with non-negative integers, found ${JSON.stringify(off)}`,
      );
    }
    const [begin, end] = off as [number, number];
    if (end < begin) throw new CheckpointError(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    const shape = e.shape as number[];
    const bits = numel(shape) * BITS[e.dtype];
    if (!Number.isSafeInteger(bits) || bits % 8 !== 0) {
      throw new CheckpointError(
        `${where}: shape ${fmtShape(shape)} of ${e.dtype} does not fill a whole number of bytes`,
      );
    }
    if (end - begin !== bits / 8) {
      throw new CheckpointError(
        `${where}: shape ${fmtShape(shape)} of ${e.dtype} needs ${bits / 8} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    tensors.set(name, { name, dtype: e.dtype, shape: [...shape], begin, end });
  }

  // The data buffer must be tiled exactly: sorted by offsets, each tensor starts where the previous ended.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorInfo | null = null;
  for (const t of sorted) {
    if (t.begin !== pos) {
      const rel = t.begin < pos ? 'overlaps' : 'leaves a gap after';
      const other = prev ? `tensor '${prev.name}' (ending at ${pos})` : 'the start of the data buffer (offset 0)';
      throw new CheckpointError(
        `${path}: tensor '${t.name}' data_offsets [${t.begin}, ${t.end}] ${rel} ${other}; expected BEGIN = ${pos}`,
      );
    }
    pos = t.end;
    prev = t;
  }
  const dataSize = size - 8 - n;
  if (pos !== dataSize) {
    throw new CheckpointError(
      pos > dataSize
        ? `${path}: tensor '${sorted.find((t) => t.end > dataSize)!.name}' runs past the end of the file (offsets end at ${pos}, but the data buffer holds ${dataSize} bytes); the file is truncated`
        : `${path}: file has ${dataSize - pos} bytes of trailing data after the last tensor (offsets end at ${pos}, data buffer holds ${dataSize} bytes)`,
    );
  }
  return { headerLength: n, tensors, metadata };
}

// ---------------------------------------------------------------------------------------------------------------
// Writer

export type WriteDtype = 'F32' | 'F16' | 'BF16';

export type TensorToWrite =
  | { shape: readonly number[]; data: Float32Array; dtype?: WriteDtype }
  | { shape: readonly number[]; data: BigInt64Array; dtype: 'I64' };

export interface WriteOptions {
  /** Storage dtype for float tensors without their own dtype. Default F32. */
  dtype?: WriteDtype;
  /** Extra `__metadata__` entries; `format: "pt"` is always set (HF loaders expect it). */
  metadata?: Record<string, string>;
}

/** The header bytes (JSON padded with spaces to a multiple of 8) and the tensor order the writer uses. */
export function planSafetensors(
  tensors: Map<string, TensorToWrite> | Iterable<[string, TensorToWrite]>,
  opts: WriteOptions = {},
): { header: Uint8Array; order: { name: string; dtype: Dtype; t: TensorToWrite; bytes: number }[] } {
  const entries = [...tensors];
  const rank = (d: Dtype) => DTYPES.indexOf(d);
  const order = entries.map(([name, t]) => {
    if (name === '__metadata__')
      throw new CheckpointError(`safetensors writer: '__metadata__' is not a valid tensor name`);
    const dtype: Dtype = t.dtype ?? opts.dtype ?? 'F32';
    const n = numel(t.shape);
    if (!t.shape.every(isNonNegInt)) {
      throw new CheckpointError(`safetensors writer: tensor '${name}' has an invalid shape ${fmtShape(t.shape)}`);
    }
    if (t.data.length !== n) {
      throw new CheckpointError(
        `safetensors writer: tensor '${name}' has shape ${fmtShape(t.shape)} (${n} elements) but ${t.data.length} values`,
      );
    }
    return { name, dtype, t, bytes: (n * BITS[dtype]) / 8 };
  });
  order.sort((a, b) => rank(b.dtype) - rank(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { ...(opts.metadata ?? {}), format: 'pt' } };
  let pos = 0;
  for (const o of order) {
    header[o.name] = { dtype: o.dtype, shape: [...o.t.shape], data_offsets: [pos, pos + o.bytes] };
    pos += o.bytes;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let bytes = enc.encode(json);
  const pad = (8 - (bytes.length % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    bytes = enc.encode(json);
  }
  return { header: bytes, order };
}

const CONVERT_CHUNK = 1 << 20; // elements converted per write, so F16 output never doubles a big tensor in memory

/**
 * Write a safetensors file atomically (temp file in the same folder, fsync, rename). Tensors are ordered by
 * dtype alignment descending, then name; offsets are contiguous; the header is space-padded to 8 bytes.
 */
export function writeSafetensors(
  path: string,
  tensors: Map<string, TensorToWrite> | Iterable<[string, TensorToWrite]>,
  opts: WriteOptions = {},
): void {
  assertLittleEndianHost();
  const { header, order } = planSafetensors(tensors, opts);
  writeWithFdAtomic(path, (fd) => {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(header.length), true);
    writeAll(fd, len);
    writeAll(fd, header);
    for (const o of order) {
      const d = o.t.data;
      if (o.dtype === 'I64' || o.dtype === 'F32') {
        if ((o.dtype === 'I64') !== d instanceof BigInt64Array) {
          throw new CheckpointError(
            `safetensors writer: tensor '${o.name}': dtype ${o.dtype} does not match its data array`,
          );
        }
        writeAll(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      } else if (o.dtype === 'F16' || o.dtype === 'BF16') {
        if (!(d instanceof Float32Array)) {
          throw new CheckpointError(`safetensors writer: tensor '${o.name}': dtype ${o.dtype} needs Float32Array data`);
        }
        const half = new Uint16Array(Math.min(CONVERT_CHUNK, d.length));
        for (let i = 0; i < d.length; i += CONVERT_CHUNK) {
          const src = d.subarray(i, Math.min(d.length, i + CONVERT_CHUNK));
          const out = half.subarray(0, src.length);
          if (o.dtype === 'F16') f32ArrayToF16(src, out);
          else f32ArrayToBf16(src, out);
          writeAll(fd, new Uint8Array(out.buffer, 0, out.byteLength));
        }
      } else {
        throw new CheckpointError(`safetensors writer: dtype ${o.dtype} is not supported (tensor '${o.name}')`);
      }
    }
  });
}

/** Read a whole safetensors file of float tensors into memory (convenience for small files and tests). */
export function readSafetensors(path: string): {
  tensors: Map<string, { dtype: Dtype; shape: number[]; data: Float32Array }>;
  metadata: Record<string, string>;
} {
  const r = SafetensorsReader.open(path);
  try {
    const tensors = new Map<string, { dtype: Dtype; shape: number[]; data: Float32Array }>();
    for (const t of r.tensors.values())
      tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: r.readFloat32(t.name) });
    return { tensors, metadata: r.metadata };
  } finally {
    r.close();
  }
}
