// `mope-clip embed`: projected text and image features (HF get_text_features / get_image_features) as JSON.
import { checkOutputFile } from '../io/out-path.ts';
import type { Command } from 'commander';
import { collect, emitJson, makeRuntime, parseBatch, PRECISION_HELP } from './common.ts';
import { checkBatchMemory } from '../model/config.ts';
import { UsageError } from '../errors.ts';
import { openModelFolder } from '../io/model-folder.ts';
import { readTextsFile } from '../io/texts.ts';
import { preprocessImage } from '../io/preprocess.ts';
import { encodeImages, encodeTexts, normalizeRows } from '../model/encode.ts';
import { processIO, type CliIO } from './io.ts';

function rows(x: Float32Array, n: number, e: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) out.push(Array.from(x.subarray(i * e, (i + 1) * e)));
  return out;
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('embed')
    .description(
      'Embed texts and images with a CLIP checkpoint; writes {"input_ids", "text_embeds", "image_embeds"}, one row per input in argument order.',
    )
    .requiredOption(
      '--model <dir>',
      'checkpoint folder (config.json, model.safetensors, tokenizer, preprocessor_config.json)',
    )
    .option('--text <text>', 'a text to embed (repeatable)', collect, [])
    .option('--texts-file <file>', 'texts to embed: a JSON array of strings, or a .txt with one text per line')
    .option('--image <path>', 'an image file to embed (repeatable; JPEG, PNG, WebP, GIF)', collect, [])
    .option('--out <file>', 'write the JSON here (atomically) instead of stdout')
    .option('--normalize', 'L2-normalise the embeddings (default: raw projected features)')
    .option('--batch <n>', 'batch size', '32')
    .option('--threads <n>', 'compute threads (default: MOPE_THREADS or all cores)')
    .option('--precision <p>', PRECISION_HELP)
    .action(async (o) => {
      if (o.text.length === 0 && !o.textsFile && o.image.length === 0) {
        throw new UsageError('embed: nothing to embed; give at least one --text, --texts-file or --image.');
      }
      const batch = parseBatch(o.batch);
      if (o.out) {
        checkOutputFile(o.out, '--out', [
          { flag: '--model', path: o.model },
          { flag: '--texts-file', path: o.textsFile },
          ...o.image.map((p: string) => ({ flag: '--image', path: p })),
        ]);
      }
      const rt = makeRuntime(o);
      const folder = openModelFolder(o.model);
      checkBatchMemory(folder.model.config, batch);
      const texts: string[] = [...o.text, ...(o.textsFile ? readTextsFile(o.textsFile) : [])];
      const E = folder.model.config.projectionDim;
      const result: { input_ids: number[][]; text_embeds: number[][]; image_embeds: number[][] } = {
        input_ids: [],
        text_embeds: [],
        image_embeds: [],
      };
      if (texts.length > 0) {
        const tok = folder.tokenizer();
        const ids = texts.map((t) => tok.encode(t));
        let emb = encodeTexts(rt, folder.model, ids, { batch });
        if (o.normalize) emb = normalizeRows(rt, emb, ids.length, E);
        result.input_ids = ids;
        result.text_embeds = rows(emb, ids.length, E);
      }
      if (o.image.length > 0) {
        const cfg = await folder.preprocessor();
        const paths: string[] = o.image;
        const first = await preprocessImage(paths[0]!, cfg);
        const pixels = new Float32Array(first.length * paths.length);
        pixels.set(first, 0);
        for (let i = 1; i < paths.length; i++)
          await preprocessImage(paths[i]!, cfg, pixels.subarray(i * first.length, (i + 1) * first.length));
        let emb = encodeImages(rt, folder.model, pixels, paths.length, { batch });
        if (o.normalize) emb = normalizeRows(rt, emb, paths.length, E);
        result.image_embeds = rows(emb, paths.length, E);
      }
      emitJson(io, result, o.out);
    });
}
