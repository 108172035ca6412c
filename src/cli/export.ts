// `mope-clip export`: a checkpoint folder → a transformers.js / onnxruntime folder (onnx/*.onnx, tokenizer and
// preprocessor JSON, export_report.json). Dims: none of its own (see src/export/).
import { checkOutputDir } from '../io/out-path.ts';
import type { Command } from 'commander';
import { emitJson, makeRuntime, parsePositiveInt } from './common.ts';
import { exportModel, DEFAULT_OPSET } from '../export/export.ts';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('export')
    .description(
      'Export a checkpoint (dense or pruned) to ONNX for onnxruntime and transformers.js: onnx/model.onnx, ' +
        'onnx/text_model.onnx, onnx/vision_model.onnx (+ _fp16 / _quantized variants), config.json, tokenizer.json, ' +
        'tokenizer_config.json, special_tokens_map.json, preprocessor_config.json and export_report.json. ' +
        'Prints the report as JSON.',
    )
    .requiredOption('--model <dir>', 'checkpoint folder to export')
    .requiredOption('--out <dir>', 'output folder (must not exist or be empty, unless --force)')
    .option('--quantize <list>', 'extra variants, comma-separated: fp16 (→ *_fp16.onnx), q8 (→ *_quantized.onnx)', '')
    .option('--opset <n>', `ai.onnx opset, 17 to 21`, String(DEFAULT_OPSET))
    .option('--force', 'replace a non-empty output folder')
    .option('--no-check', 'skip the onnxruntime checks against the engine (and their report entries)')
    .option(
      '--eval-data <spec>',
      'also measure zero-shot (classification set) or retrieval (pairs) of every precision on this data set, e.g. builtin:fashion-mnist:test',
    )
    .option('--eval-limit <n>', 'items of --eval-data to use', '500')
    .option('--threads <n>', 'compute threads for the checks (default: MOPE_THREADS or all cores)')
    .action(async (o) => {
      checkOutputDir(o.out, '--out', [{ flag: '--model', path: o.model }]);
      const rt = o.check ? makeRuntime(o) : undefined;
      const report = await exportModel(o.model, o.out, {
        quantize: o.quantize,
        opset: parsePositiveInt(o.opset, '--opset'),
        force: Boolean(o.force),
        rt,
        evalData: o.evalData,
        evalLimit: parsePositiveInt(o.evalLimit, '--eval-limit'),
        log: (m) => io.err.write(m + '\n'),
      });
      const bad = Object.entries(report.checks ?? {})
        .filter(([, c]) => c.ok === false)
        .map(([p]) => p);
      if (bad.length > 0)
        io.err.write(`warning: ${bad.join(', ')} differ from the engine by more than 1e-4; see export_report.json\n`);
      emitJson(io, report);
    });
}
