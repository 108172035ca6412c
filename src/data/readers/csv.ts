// csv:PATH and tsv:PATH readers: image-text pairs with a header row (open_clip's convention, columns
// filepath and title by default); rows naming the same image become one item with several captions.
import { readTextChunks } from '../../io/read-stream.ts';
import { formatBytes, LIMITS } from '../../io/limits.ts';
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
 * RFC 4180 parsing, incremental: fields separated by `sep`, optionally wrapped in double quotes (which may hold
 * the separator, newlines and "" for a quote). CRLF or LF line ends; blank lines skipped. Text arrives in chunks
 * of any size (a chunk may end inside a field, a quote pair or a CRLF); each finished record goes to `onRecord`.
 * A record longer than LIMITS.lineBytes characters is an error, raised before it is held whole.
 */
export class DelimitedParser {
  private fields: string[] = [];
  private field = '';
  private recordLen = 0;
  private line = 1; // current physical line
  private start = 1; // line on which the current record started
  // 0 unquoted, 1 inside quotes, 2 a quote seen inside quotes (closing, or the first of ""), 3 after a CR
  private state = 0;
  constructor(
    private readonly sep: string,
    private readonly file: string,
    private readonly onRecord: (r: CsvRecord) => void,
  ) {}

  private endRecord(): void {
    this.fields.push(this.field);
    // A blank line is a record with one empty field: skip it.
    if (!(this.fields.length === 1 && this.fields[0] === '')) this.onRecord({ fields: this.fields, line: this.start });
    this.fields = [];
    this.field = '';
    this.recordLen = 0;
  }

  push(text: string): void {
    const { sep } = this;
    this.recordLen += text.length;
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (this.state === 3) {
        this.state = 0;
        if (ch === '\n') {
          i++;
          continue;
        }
      }
      if (this.state === 2) {
        if (ch === '"') {
          this.field += '"';
          this.state = 1;
          i++;
          continue;
        }
        if (ch !== sep && ch !== '\n' && ch !== '\r') {
          throw new DataError(
            `${this.file}:${this.line}: unexpected character after a closing quote; expected the separator or a line end.`,
          );
        }
        this.state = 0;
      }
      if (this.state === 1) {
        // Copy the run up to the next quote in one slice.
        const q = text.indexOf('"', i);
        const end = q < 0 ? text.length : q;
        const run = text.slice(i, end);
        for (let k = run.indexOf('\n'); k >= 0; k = run.indexOf('\n', k + 1)) this.line++;
        this.field += run;
        if (this.field.length > LIMITS.lineBytes) this.tooLong();
        i = end;
        if (q >= 0) {
          this.state = 2;
          i++;
        }
        continue;
      }
      if (ch === '"' && this.field === '') {
        this.state = 1;
        i++;
        continue;
      }
      if (ch === sep) {
        this.fields.push(this.field);
        this.field = '';
        i++;
        continue;
      }
      if (ch === '\r' || ch === '\n') {
        if (ch === '\r') this.state = 3;
        i++;
        // recordLen counted the whole chunk; what follows the record end belongs to the next record.
        this.endRecord();
        this.recordLen = text.length - i;
        this.line++;
        this.start = this.line;
        continue;
      }
      this.field += ch;
      i++;
    }
    if (this.recordLen > LIMITS.lineBytes) this.tooLong();
  }

  private tooLong(): never {
    throw new DataError(
      `${this.file}:${this.start}: a record longer than ${formatBytes(LIMITS.lineBytes)} characters (the limit per record); is this the right file?`,
    );
  }

  end(): void {
    if (this.state === 1) {
      throw new DataError(`${this.file}:${this.start}: a quoted field is never closed (missing ").`);
    }
    if (this.field !== '' || this.fields.length > 0 || this.state === 2) this.endRecord();
  }
}

/** Parses a whole delimited text (see DelimitedParser); a leading UTF-8 BOM is dropped. */
export function parseDelimited(text: string, sep: string, file: string): CsvRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: CsvRecord[] = [];
  const p = new DelimitedParser(sep, file, (r) => records.push(r));
  p.push(text);
  p.end();
  return records;
}

export function readCsv(path: string, sep: ',' | '\t', spec: string, opts: CsvOptions): PairsDataset {
  const imageKey = opts.imageKey ?? 'filepath';
  const captionKey = opts.captionKey ?? 'title';
  const base = imageBase(path, opts);
  const group = new PairGrouper();
  let header: string[] | null = null;
  let ic = -1,
    cc = -1;
  // Records are handled as they are parsed: only the grouped items stay in memory, not the file or its rows.
  const onRecord = ({ fields, line }: CsvRecord) => {
    if (header === null) {
      header = fields.map((h) => h.trim());
      ic = header.indexOf(imageKey);
      cc = header.indexOf(captionKey);
      if (ic < 0 || cc < 0) {
        const missing = [ic < 0 ? `"${imageKey}"` : '', cc < 0 ? `"${captionKey}"` : ''].filter(Boolean).join(' and ');
        throw new DataError(
          `${path}:${line}: the header has no column ${missing}; found columns ${header.map((h) => `"${h}"`).join(', ')}. ` +
            `Choose the columns with --image-key and --caption-key.`,
        );
      }
      return;
    }
    const ref = `${path}:${line}`;
    if (fields.length !== header.length) {
      opts.bad.report(ref, `expected ${header.length} fields (as in the header), found ${fields.length}`);
      return;
    }
    const img = fields[ic].trim();
    const cap = fields[cc];
    if (img === '') {
      opts.bad.report(ref, `empty image path in column "${imageKey}"`);
      return;
    }
    if (isBlank(cap)) {
      opts.bad.report(ref, `empty caption in column "${captionKey}"`);
      return;
    }
    const full = resolveImage(base, img);
    if (opts.checkFiles !== false) {
      const why = missingReason(full);
      if (why) {
        opts.bad.report(ref, why);
        return;
      }
    }
    group.add(full, [cap.trim()], ref);
  };
  const parser = new DelimitedParser(sep, path, onRecord);
  for (const chunk of readTextChunks(path, 'data file', LIMITS.dataBytes, DataError)) parser.push(chunk);
  parser.end();
  if (header === null)
    throw new DataError(`${path}: the file is empty; expected a header row naming the image and caption columns.`);
  const items = group.items();
  if (items.length === 0) throw new DataError(`${path}: no usable image-caption rows.`);
  return pairsFromArray(spec, items);
}
