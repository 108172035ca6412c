// The Hugging Face tokenizer files of a checkpoint folder (vocab.json, merges.txt, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json), written atomically from a loaded tokenizer.
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.ts';
import { BOS_TOKEN, CLIP_SPLIT_PATTERN, END_OF_WORD, EOS_TOKEN, mergesTxtText, vocabJsonText } from './bpe-vocab.ts';
import { CLIP_CONTEXT_LENGTH, type ClipTokenizer } from './tokenizer.ts';

/** Writes vocab.json and merges.txt (HF slow-tokenizer files) atomically; returns the paths written. */
export function writeVocabMerges(tok: ClipTokenizer, dir: string): string[] {
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  writeFileAtomic(vocabPath, vocabJsonText(tok.vocabEntries()));
  writeFileAtomic(mergesPath, mergesTxtText(tok.merges));
  return [vocabPath, mergesPath];
}

/** The HF fast tokenizer.json object CLIPConverter produces (what transformers.js reads). */
export function tokenizerJson(tok: ClipTokenizer): Record<string, unknown> {
  const added = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(tok.bosId, BOS_TOKEN), added(tok.eosId, EOS_TOKEN)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT_PATTERN }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS_TOKEN, tok.eosId],
      cls: [BOS_TOKEN, tok.bosId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS_TOKEN,
      continuing_subword_prefix: '',
      end_of_word_suffix: END_OF_WORD,
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries(tok.vocabEntries()),
      merges: tok.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** tokenizer_config.json; model_max_length must be present or transformers.js never truncates. */
export function tokenizerConfigJson(tok?: ClipTokenizer): Record<string, unknown> {
  return {
    tokenizer_class: 'CLIPTokenizer',
    model_max_length: tok?.contextLength ?? CLIP_CONTEXT_LENGTH,
    bos_token: BOS_TOKEN,
    eos_token: EOS_TOKEN,
    unk_token: EOS_TOKEN,
    pad_token: EOS_TOKEN,
    add_prefix_space: false,
    do_lower_case: true,
    errors: 'replace',
    clean_up_tokenization_spaces: false,
  };
}

/** special_tokens_map.json as HF writes it for CLIP. */
export function specialTokensMapJson(): Record<string, string> {
  return { bos_token: BOS_TOKEN, eos_token: EOS_TOKEN, unk_token: EOS_TOKEN, pad_token: EOS_TOKEN };
}

/** Writes every tokenizer file of an HF checkpoint folder atomically; returns the paths written. */
export function writeTokenizerFolder(tok: ClipTokenizer, dir: string): string[] {
  const written = writeVocabMerges(tok, dir);
  const files: Array<[string, unknown]> = [
    ['tokenizer.json', tokenizerJson(tok)],
    ['tokenizer_config.json', tokenizerConfigJson(tok)],
    ['special_tokens_map.json', specialTokensMapJson()],
  ];
  for (const [name, obj] of files) {
    const path = join(dir, name);
    writeFileAtomic(path, JSON.stringify(obj, null, name === 'tokenizer.json' ? undefined : 2) + '\n');
    written.push(path);
  }
  return written;
}
