// Decode worker: receives a list of image sources, decodes and preprocesses each into one slot of a
// Float32Array [B,3,S,S], and posts it back (transferred, not copied) with per-image errors.
import { parentPort } from 'node:worker_threads';
import { preprocessImage, preprocessRgb, type PreprocessorConfig } from '../io/preprocess.ts';
import type { ImageSource } from './dataset.ts';
import type { ResampleKernels } from '../engine/kernels.ts';

export interface DecodeRequest {
  id: number;
  sources: ImageSource[];
  cfg: PreprocessorConfig;
  /** Floats per image (3·S·S). */
  per: number;
}

export interface DecodeReply {
  id: number;
  pixels: Float32Array;
  /** Slot k failed with this message (its slot holds garbage). */
  errors: Array<{ k: number; message: string }>;
}

/**
 * Decodes the sources into one buffer; shared by the workers and the in-process path. `kernels` run the resize
 * (a Runtime's native kernels in the calling thread; the workers use the TypeScript twin, same bytes).
 */
export async function decodeSources(
  sources: ImageSource[],
  cfg: PreprocessorConfig,
  per: number,
  kernels?: ResampleKernels,
): Promise<Omit<DecodeReply, 'id'>> {
  const pixels = new Float32Array(sources.length * per);
  const errors: Array<{ k: number; message: string }> = [];
  for (let k = 0; k < sources.length; k++) {
    const src = sources[k];
    const out = pixels.subarray(k * per, (k + 1) * per);
    try {
      if (src.kind === 'file') await preprocessImage(src.path, cfg, out, kernels);
      else preprocessRgb(src.data, src.width, src.height, cfg, out, kernels);
    } catch (e) {
      errors.push({ k, message: (e as Error).message ?? String(e) });
    }
  }
  return { pixels, errors };
}

if (parentPort) {
  const port = parentPort;
  port.on('message', async (req: DecodeRequest) => {
    const r = await decodeSources(req.sources, req.cfg, req.per);
    const reply: DecodeReply = { id: req.id, ...r };
    port.postMessage(reply, [r.pixels.buffer as ArrayBuffer]);
  });
}
