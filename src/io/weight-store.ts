// Tensor access across one or many safetensors files of a checkpoint folder (single file or sharded index).
import { existsSync } from 'node:fs';
import { readJsonBounded } from './read-bounded.ts';
import { LIMITS } from './limits.ts';
import { join } from 'node:path';
import { CheckpointError, ConfigError } from '../errors.ts';
import { SafetensorsReader } from './safetensors.ts';

export const WEIGHTS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** Single-file weight names tried in order (the OpenCLIP hub name last). */
const SINGLE_FILES = [WEIGHTS_FILE, 'open_clip_model.safetensors'];
const PICKLE_FILES = ['pytorch_model.bin', 'open_clip_pytorch_model.bin', 'model.pt'];
// ---------------------------------------------------------------------------------------------------------------
// Reading tensors from one or many safetensors files

export interface TensorRef {
  reader: SafetensorsReader;
  name: string;
}

export class TensorStore {
  readonly refs = new Map<string, TensorRef>();
  readonly readers: SafetensorsReader[] = [];
  constructor(readonly describe: string) {}

  add(reader: SafetensorsReader): void {
    this.readers.push(reader);
    for (const name of reader.names()) {
      const prev = this.refs.get(name);
      if (prev) {
        throw new CheckpointError(
          `${reader.path}: tensor '${name}' also appears in ${prev.reader.path}; each tensor must be stored once`,
        );
      }
      this.refs.set(name, { reader, name });
    }
  }

  close(): void {
    for (const r of this.readers) r.close();
  }
}

export function readJson(path: string, err: typeof CheckpointError | typeof ConfigError): unknown {
  return readJsonBounded(path, 'file', LIMITS.configBytes, err);
}

export function openWeights(dir: string, file?: string): TensorStore {
  const single = file ? [file] : SINGLE_FILES.map((f) => join(dir, f)).filter((p) => existsSync(p));
  if (single.length > 0) {
    const store = new TensorStore(single[0]!);
    try {
      store.add(SafetensorsReader.open(single[0]!));
    } catch (e) {
      store.close();
      throw e;
    }
    return store;
  }
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) {
    const index = readJson(indexPath, CheckpointError) as Record<string, unknown>;
    const wm = index?.weight_map;
    if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
      throw new CheckpointError(
        `${indexPath}: field 'weight_map' must be an object mapping tensor names to shard files`,
      );
    }
    const map = wm as Record<string, unknown>;
    const shards = new Map<string, SafetensorsReader>();
    const store = new TensorStore(indexPath);
    try {
      for (const [name, shard] of Object.entries(map)) {
        if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard === '..') {
          throw new CheckpointError(
            `${indexPath}: weight_map['${name}'] must be a shard file name in the same folder, found ${JSON.stringify(shard)}`,
          );
        }
        let r = shards.get(shard);
        if (!r) {
          const p = join(dir, shard);
          if (!existsSync(p))
            throw new CheckpointError(`${indexPath}: shard '${shard}' (holding '${name}') does not exist in ${dir}`);
          r = SafetensorsReader.open(p);
          shards.set(shard, r);
          store.add(r);
        }
        if (!r.has(name))
          throw new CheckpointError(
            `${indexPath}: weight_map puts tensor '${name}' in '${shard}', but ${r.path} has no such tensor`,
          );
      }
    } catch (e) {
      for (const r of shards.values()) r.close();
      throw e;
    }
    if (shards.size === 0) throw new CheckpointError(`${indexPath}: weight_map is empty`);
    return store;
  }
  const pickle = PICKLE_FILES.find((f) => existsSync(join(dir, f)));
  if (pickle) {
    throw new CheckpointError(
      `${join(dir, pickle)}: PyTorch pickle weights are not supported; convert them to safetensors first (e.g. safetensors.torch.save_file(torch.load(path), "model.safetensors"))`,
    );
  }
  throw new CheckpointError(
    `${dir}: no ${WEIGHTS_FILE} or ${INDEX_FILE} found; expected a Hugging Face CLIP checkpoint folder`,
  );
}
