// `mope-clip tokenize`: CLIP BPE ids (BOS … EOS, truncated to the context length, no padding) as a JSON array.
import type { Command } from 'commander';
import { collect, emitJson } from './common.ts';
import { loadConfig } from '../io/checkpoint.ts';
import { loadTokenizerFromFolder } from '../io/tokenizer.ts';
import { readTextsFile } from '../io/texts.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { processIO, type CliIO } from './io.ts';

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('tokenize')
    .description('Print the token ids of each text as a JSON array of id arrays (BOS … EOS, truncated, no padding).')
    .requiredOption('--model <dir>', 'checkpoint folder holding tokenizer.json or vocab.json + merges.txt')
    .option('--text <text>', 'a text (repeatable)', collect, [])
    .option('--texts-file <file>', 'a JSON array of strings, or a .txt with one text per line')
    .action((o) => {
      // The context length is capped by the model's position table when config.json is there.
      const text = existsSync(join(o.model, 'config.json')) ? loadConfig(o.model).text : undefined;
      const tok = loadTokenizerFromFolder(o.model, {
        maxPositions: text?.maxPositions,
        modelVocabSize: text?.vocabSize,
      });
      const texts: string[] = [...o.text, ...(o.textsFile ? readTextsFile(o.textsFile) : [])];
      emitJson(
        io,
        texts.map((t) => tok.encode(t)),
      );
    });
}
