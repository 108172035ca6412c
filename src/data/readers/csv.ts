// csv:PATH and tsv:PATH readers: image-text pairs with a header row (open_clip's convention, columns
// filepath and title by default); rows naming the same image become one item with several captions.
import { checkLineLengths, readRegularText } from '../../io/read-bounded.ts';
import { LIMITS } from '../../io/limits.ts';
import { DataError } from '../../errors.ts';
import { pairsFromArray, type PairsDataset } from '../dataset.ts';
import { imageBase, isBlank, missingReason, PairGrouper, resolveImage, type ReaderOptions } from './common.ts';

export interface CsvOptions extends ReaderOptions {
  /** Column holding the image path (default "filepath"). */
  imageKey?: string;
  /** Column holding the caption (default "title"). */
  captionKey?: string;
}

export interface CsvRecord {
  fields: string[];
  /** 1-based line on which the record starts. */
  line: number;
}

/**
 * RFC 4180 parsing: fields separated by `sep`, optionally wrapped in double quotes (which may hold the
 * separator, newlines and "" for a quote). CRLF or LF line ends; a UTF-8 BOM is dropped; blank lines skipped.
 */
export function parseDelimited(text: string, sep: string, file: string): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1; // current physical line
  let start = 1; // line on which the current record started
  let quoted = false;
  const endRecord = () => {
    fields.push(field);
    // A blank line is a record with one empty field: skip it.
    if (!(fields.length === 1 && fields[0] === '')) records.push({ fields, line: start });
    fields = [];
    field = '';
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        if (i < text.length && text[i] !== sep && text[i] !== '\n' && text[i] !== '\r') {
          throw new DataError(
            `${file}:${line}: unexpected character after a closing quote; expected the separator or a line end.`,
          );
        }
        continue;
      }
      if (ch === '\n') line++;
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
      i++;
      continue;
    }
    if (ch === sep) {
      fields.push(field);
      field = '';
      i++;
      continue;
    }
    if (ch === '\r' || ch === '\n') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      i++;
      endRecord();
      line++;
      start = line;
      continue;
    }
    field += ch;
    i++;
  }
  if (quoted) throw new DataError(`${file}:${start}: a quoted field is never closed (missing ").`);
  if (field !== '' || fields.length > 0) endRecord();
  return records;
}

export function readCsv(path: string, sep: ',' | '\t', spec: string, opts: CsvOptions): PairsDataset {
  const text = readRegularText(path, 'data file', LIMITS.dataBytes, DataError);
  checkLineLengths(text, path);
  const records = parseDelimited(text, sep, path);
  if (records.length === 0)
    throw new DataError(`${path}: the file is empty; expected a header row naming the image and caption columns.`);
  const header = records[0].fields.map((h) => h.trim());
  const imageKey = opts.imageKey ?? 'filepath';
  const captionKey = opts.captionKey ?? 'title';
  const ic = header.indexOf(imageKey);
  const cc = header.indexOf(captionKey);
  if (ic < 0 || cc < 0) {
    const missing = [ic < 0 ? `"${imageKey}"` : '', cc < 0 ? `"${captionKey}"` : ''].filter(Boolean).join(' and ');
    throw new DataError(
      `${path}:${records[0].line}: the header has no column ${missing}; found columns ${header.map((h) => `"${h}"`).join(', ')}. ` +
        `Choose the columns with --image-key and --caption-key.`,
    );
  }
  const base = imageBase(path, opts);
  const group = new PairGrouper();
  for (let r = 1; r < records.length; r++) {
    const { fields, line } = records[r];
    const ref = `${path}:${line}`;
    if (fields.length !== header.length) {
      opts.bad.report(ref, `expected ${header.length} fields (as in the header), found ${fields.length}`);
      continue;
    }
    const img = fields[ic].trim();
    const cap = fields[cc];
    if (img === '') {
      opts.bad.report(ref, `empty image path in column "${imageKey}"`);
      continue;
    }
    if (isBlank(cap)) {
      opts.bad.report(ref, `empty caption in column "${captionKey}"`);
      continue;
    }
    const full = resolveImage(base, img);
    if (opts.checkFiles !== false) {
      const why = missingReason(full);
      if (why) {
        opts.bad.report(ref, why);
        continue;
      }
    }
    group.add(full, [cap.trim()], ref);
  }
  const items = group.items();
  if (items.length === 0) throw new DataError(`${path}: no usable image-caption rows.`);
  return pairsFromArray(spec, items);
}
