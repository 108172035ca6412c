// Export a checkpoint folder as a transformers.js / onnxruntime folder: config, tokenizer and preprocessor JSON,
// onnx/{model,text_model,vision_model}{,_fp16,_quantized}.onnx and export_report.json (sizes, checks).
// Dims: B batch, S tokens, E projection dim, ch·S·S pixels per image.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { replaceFolderAtomicAsync, writeFileAtomic } from '../io/atomic.ts';
import { ClipTokenizer, loadTokenizerFromFolder } from '../io/tokenizer.ts';
import { specialTokensMapJson, tokenizerConfigJson, tokenizerJson } from '../io/tokenizer-files.ts';
import { loadPreprocessorConfig, serializePreprocessorConfig } from '../io/preprocess.ts';
import { serializeClipConfig } from '../model/config.ts';
import type { ClipModel } from '../model/types.ts';
import { buildClipGraph, type GraphKind } from './clip-graph.ts';
import { encodeModel, irVersionForOpset, writeChunks } from './graph.ts';
import { parseVariants, VARIANTS, type Precision, type VariantName } from './quantize.ts';
import { verifyExport, type FileCheck } from './verify.ts';
import { evalVariants, type VariantEval } from './eval-variants.ts';

export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 17;
export const MAX_OPSET = 21;
/** Past this many bytes of weights a file's tensors go to `<file>.onnx_data` (protobuf's 2 GiB limit, with room). */
export const EXTERNAL_DATA_THRESHOLD = 1_900_000_000;

export const FILE_BASES: Record<GraphKind, string> = { full: 'model', text: 'text_model', vision: 'vision_model' };

export interface ExportOptions {
  /** Extra variants: 'fp16' (→ _fp16) and 'q8' (→ _quantized); a list or a comma-separated string. */
  quantize?: VariantName[] | string;
  /** ai.onnx opset, 17 (default) to 21. */
  opset?: number;
  /** Replace an existing non-empty output folder (default: refuse). */
  force?: boolean;
  /** Runtime for the engine's own forward in the checks; without it the checks (and their report entries) are skipped. */
  rt?: Runtime;
  /** Weight bytes above which a file uses external data (default EXTERNAL_DATA_THRESHOLD; tests lower it). */
  externalDataThreshold?: number;
  /** A data set SPEC (e.g. builtin:fashion-mnist:test): zero-shot / retrieval of every precision into the report. */
  evalData?: string;
  /** Items of evalData to use (default 500). */
  evalLimit?: number;
  /** Progress messages. */
  log?: (msg: string) => void;
}

export interface ExportedFile {
  /** Path relative to the output folder. */
  path: string;
  kind: GraphKind;
  precision: Precision;
  bytes: number;
  /** `<file>.onnx_data`, when the weights went to external data. */
  externalData?: { path: string; bytes: number };
}

export interface ExportReport {
  source: string;
  out: string;
  opset: number;
  ir_version: number;
  producer: string;
  files: ExportedFile[];
  /** Other files written, with sizes. */
  support_files: Record<string, number>;
  tokenizer_source: string;
  quantization: Record<string, string>;
  checks?: Record<string, FileCheck>;
  eval?: VariantEval;
}

const QUANT_NOTES: Record<string, string> = {
  fp16: 'float16 weights and activations; float32 inputs/outputs via Cast; attention softmax in float32',
  q8:
    'int8 symmetric per-output-column weights with dynamic uint8 activation quantisation (DynamicQuantizeLinear + ' +
    'MatMulInteger); int8 per-row token embedding; attention products, layer norms and the patch Conv in float32',
};

function isNonEmptyDir(p: string): boolean {
  return statSync(p).isDirectory() && readdirSync(p).length > 0;
}

function checkOutDir(outDir: string, force: boolean): void {
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) {
    throw new ConfigError(`${outDir}: exists and is not a folder; choose another --out`);
  }
  if (isNonEmptyDir(outDir) && !force) {
    throw new ConfigError(
      `${outDir}: output folder exists and is not empty; choose a new --out folder, or pass --force to replace it`,
    );
  }
}

/** The source folder's tokenizer, or the bundled OpenAI vocabulary when the folder has no tokenizer files. */
function exportTokenizer(srcDir: string, model: ClipModel): { tok: ClipTokenizer; source: string } {
  const dir = existsSync(srcDir) && statSync(srcDir).isFile() ? dirname(srcDir) : srcDir;
  const has = ['tokenizer.json', 'vocab.json', 'merges.txt'].some((f) => existsSync(join(dir, f)));
  const maxPositions = model.config.text.maxPositions;
  if (has) return { tok: loadTokenizerFromFolder(dir, { maxPositions }), source: dir };
  return {
    tok: ClipTokenizer.fromBundledVocab({ contextLength: maxPositions }),
    source: 'bundled OpenAI CLIP BPE (the checkpoint has none)',
  };
}

function writeJson(path: string, obj: unknown): number {
  const text = JSON.stringify(obj, null, 2) + '\n';
  writeFileAtomic(path, text);
  return Buffer.byteLength(text);
}

/** Writes one graph as `onnx/<base><suffix>.onnx` (plus `.onnx_data` when too large) in `dir`. */
function writeGraph(
  model: ClipModel,
  kind: GraphKind,
  precision: Precision,
  dir: string,
  opset: number,
  threshold: number,
): ExportedFile {
  const suffix = precision === 'fp32' ? '' : VARIANTS[precision];
  const name = `${FILE_BASES[kind]}${suffix}.onnx`;
  const g = buildClipGraph(model, kind, { precision });
  const useExt = g.initializerBytes() > threshold;
  const ext = useExt ? { location: `${name}_data`, minBytes: 1024 } : undefined;
  const { model: chunks, external } = encodeModel(
    g,
    {
      opset,
      irVersion: irVersionForOpset(opset),
      producerName: 'mope-clip',
      producerVersion: '0.1.0',
      docString: `CLIP ${kind === 'full' ? 'model' : `${kind} model`} (${precision}) exported by mope-clip`,
    },
    ext,
  );
  const file: ExportedFile = {
    path: `onnx/${name}`,
    kind,
    precision,
    bytes: writeChunks(join(dir, 'onnx', name), chunks),
  };
  if (ext)
    file.externalData = { path: `onnx/${ext.location}`, bytes: writeChunks(join(dir, 'onnx', ext.location), external) };
  return file;
}

/**
 * Export the checkpoint at `srcDir` into the new folder `outDir`. Everything is written into a temporary sibling
 * folder that is renamed into place at the end, so a failure leaves no partial export behind. A non-empty
 * `outDir` is refused unless opts.force. With opts.rt, every file is run with onnxruntime-node on sample inputs
 * and compared with the engine (fp32) or with the fp32 file (variants); the results go into export_report.json.
 */
export async function exportModel(srcDir: string, outDir: string, opts: ExportOptions = {}): Promise<ExportReport> {
  const variants = parseVariants(opts.quantize);
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new ConfigError(
      `opset ${opset} is not supported; use ${MIN_OPSET} to ${MAX_OPSET} (LayerNormalization needs 17)`,
    );
  }
  const out = resolve(outDir);
  checkOutDir(out, opts.force ?? false);
  const log = opts.log ?? (() => {});
  const model = loadCheckpoint(srcDir);
  const { tok, source: tokSource } = exportTokenizer(srcDir, model);
  const srcFolder = existsSync(srcDir) && statSync(srcDir).isFile() ? dirname(srcDir) : srcDir;
  const pre = await loadPreprocessorConfig(srcFolder, model.config.vision.imageSize);

  return replaceFolderAtomicAsync(out, async (tmp) => {
    mkdirSync(join(tmp, 'onnx'), { recursive: true });
    const support: Record<string, number> = {};
    const files: ExportedFile[] = [];
    const threshold = opts.externalDataThreshold ?? EXTERNAL_DATA_THRESHOLD;
    for (const precision of ['fp32', ...variants] as Precision[]) {
      for (const kind of ['full', 'text', 'vision'] as GraphKind[]) {
        const f = writeGraph(model, kind, precision, tmp, opset, threshold);
        log(
          `export: wrote ${f.path} (${(f.bytes / 1e6).toFixed(1)} MB${f.externalData ? ` + ${(f.externalData.bytes / 1e6).toFixed(1)} MB external data` : ''})`,
        );
        files.push(f);
      }
    }
    const cfg = serializeClipConfig(model.config);
    cfg.torch_dtype = 'float32';
    const ext = files.filter((f) => f.externalData).map((f) => basename(f.path));
    if (ext.length > 0)
      cfg['transformers.js_config'] = { use_external_data_format: Object.fromEntries(ext.map((n) => [n, true])) };
    support['config.json'] = writeJson(join(tmp, 'config.json'), cfg);
    support['tokenizer.json'] = writeJson(join(tmp, 'tokenizer.json'), tokenizerJson(tok));
    support['tokenizer_config.json'] = writeJson(join(tmp, 'tokenizer_config.json'), tokenizerConfigJson(tok));
    support['special_tokens_map.json'] = writeJson(join(tmp, 'special_tokens_map.json'), specialTokensMapJson());
    support['preprocessor_config.json'] = writeJson(
      join(tmp, 'preprocessor_config.json'),
      serializePreprocessorConfig(pre),
    );

    const report: ExportReport = {
      source: resolve(srcDir),
      out,
      opset,
      ir_version: irVersionForOpset(opset),
      producer: 'mope-clip 0.1.0',
      files,
      support_files: support,
      tokenizer_source: tokSource,
      quantization: Object.fromEntries(variants.map((v) => [`${v} (${VARIANTS[v]})`, QUANT_NOTES[v]!])),
    };
    if (opts.rt) {
      log('export: checking every file with onnxruntime-node');
      report.checks = await verifyExport(opts.rt, model, tok, tmp, files);
    }
    if (opts.evalData) {
      log(`export: evaluating ${['fp32', ...variants].join(', ')} on ${opts.evalData}`);
      report.eval = await evalVariants(tmp, ['fp32', ...variants], model, tok, pre, {
        data: opts.evalData,
        limit: opts.evalLimit,
      });
    }
    writeJson(join(tmp, 'export_report.json'), report);
    return report;
  });
}
