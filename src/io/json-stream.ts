// A streamed reader for one large JSON document of the form {"key": value, ..., "ARRAY": [item, item, ...], ...}
// (the Karpathy-style COCO caption file): text arrives in chunks; each element of the named top-level array is
// parsed on its own and handed over, so memory holds one element, never the whole document. Every other top-level
// value is parsed too (so the whole document is checked as JSON) and handed over as well. Each element or value is
// held to LIMITS.lineBytes characters and LIMITS.jsonDepth levels of nesting.
import { DataError } from '../errors.ts';
import { formatBytes, LIMITS } from './limits.ts';
import { jsonDepth } from './read-bounded.ts';

type State = 'start' | 'key' | 'key-or-end' | 'colon' | 'value' | 'after-value' | 'array' | 'after-item' | 'done';

const WS = new Set([' ', '\t', '\n', '\r']);

/** Accumulates the text of one JSON value (object, array, string or scalar) and tells where it ends. */
class ValueCapture {
  private parts: string[] = [];
  private len = 0;
  private depth = 0;
  private inStr = false;
  private esc = false;
  private scalar = false;
  private started = false;

  constructor(
    private readonly file: string,
    private readonly where: () => string,
  ) {}

  /**
   * Consumes text[i..] and returns the index just past the value's end, or -1 when the value continues in the next
   * chunk. A scalar ends at the first separator (which is not consumed).
   */
  feed(text: string, i: number): number {
    const from = i;
    for (; i < text.length; i++) {
      const c = text[i];
      if (!this.started) {
        this.started = true;
        if (c === '"') {
          this.inStr = true;
          continue;
        }
        if (c === '{' || c === '[') {
          this.depth = 1;
          continue;
        }
        this.scalar = true;
      }
      if (this.scalar) {
        if (c === ',' || c === '}' || c === ']' || WS.has(c)) return this.take(text, from, i);
        continue;
      }
      if (this.inStr) {
        if (this.esc) this.esc = false;
        else if (c === '\\') this.esc = true;
        else if (c === '"') {
          this.inStr = false;
          if (this.depth === 0) return this.take(text, from, i + 1);
        }
        continue;
      }
      if (c === '"') this.inStr = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        if (--this.depth === 0) return this.take(text, from, i + 1);
      }
    }
    this.add(text.slice(from));
    return -1;
  }

  private add(part: string): void {
    this.len += part.length;
    if (this.len > LIMITS.lineBytes) {
      throw new DataError(
        `${this.file}: ${this.where()} is longer than ${formatBytes(LIMITS.lineBytes)} characters of JSON (the limit per entry); is this the right file?`,
      );
    }
    this.parts.push(part);
  }

  private take(text: string, from: number, end: number): number {
    this.add(text.slice(from, end));
    return end;
  }

  parse(): unknown {
    const s = this.parts.join('');
    if (jsonDepth(s, LIMITS.jsonDepth) > LIMITS.jsonDepth) {
      throw new DataError(`${this.file}: ${this.where()} is nested more than ${LIMITS.jsonDepth} levels deep.`);
    }
    try {
      return JSON.parse(s);
    } catch (e) {
      throw new DataError(`${this.file}: ${this.where()} is not valid JSON (${(e as Error).message}).`);
    }
  }
}

export interface JsonStreamHandlers {
  /** One element of the streamed array, with its index. */
  item(value: unknown, index: number): void;
  /** Any other top-level key and its value. */
  other?(key: string, value: unknown): void;
}

/**
 * Streams a JSON object document, handing each element of the top-level array `arrayKey` to `handlers.item`.
 * `expected` describes the document for error messages (e.g. 'a Karpathy-style {"images": [...]}').
 */
export class JsonObjectStream {
  private state: State = 'start';
  private key = '';
  private keyCapture: ValueCapture | null = null;
  private value: ValueCapture | null = null;
  private index = 0;
  private sawArray = false;

  constructor(
    private readonly file: string,
    private readonly arrayKey: string,
    private readonly expected: string,
    private readonly handlers: JsonStreamHandlers,
  ) {}

  private syntax(found: string, wanted: string): never {
    const what = found === '' ? 'the end of the file' : `"${found}"`;
    throw new DataError(
      `${this.file}: not valid JSON: found ${what} where ${wanted} was expected; expected ${this.expected}.`,
    );
  }

  push(text: string): void {
    let i = 0;
    while (i < text.length) {
      if (this.keyCapture) {
        const end = this.keyCapture.feed(text, i);
        if (end < 0) return;
        this.key = this.keyCapture.parse() as string;
        this.keyCapture = null;
        this.state = 'colon';
        i = end;
        continue;
      }
      if (this.value) {
        const end = this.value.feed(text, i);
        if (end < 0) return;
        const v = this.value.parse();
        this.value = null;
        if (this.state === 'array') {
          this.handlers.item(v, this.index++);
          this.state = 'after-item';
        } else {
          this.handlers.other?.(this.key, v);
          this.state = 'after-value';
        }
        i = end;
        continue;
      }
      const c = text[i];
      if (WS.has(c)) {
        i++;
        continue;
      }
      switch (this.state) {
        case 'start':
          if (c !== '{') {
            const kind = c === '[' ? 'an array' : c === '"' ? 'a string' : 'a number or literal';
            throw new DataError(`${this.file}: expected ${this.expected}; found ${kind} at the top level.`);
          }
          this.state = 'key-or-end';
          i++;
          break;
        case 'key-or-end':
        case 'key':
          if (c === '}' && this.state === 'key-or-end') {
            this.state = 'done';
            i++;
          } else if (c === '"') this.keyCapture = new ValueCapture(this.file, () => 'a key');
          else this.syntax(c, 'a key in double quotes');
          break;
        case 'colon':
          if (c !== ':') this.syntax(c, `":" after the key "${this.key}"`);
          this.state = 'value';
          i++;
          break;
        case 'value':
          if (this.key === this.arrayKey && c === '[') {
            this.sawArray = true;
            this.state = 'array';
            i++;
            break;
          }
          this.value = new ValueCapture(this.file, () => `the value of "${this.key}"`);
          break;
        case 'array':
          if (c === ']' && this.index === 0) {
            this.state = 'after-value';
            i++;
          } else {
            const k = this.index;
            this.value = new ValueCapture(this.file, () => `${this.arrayKey}[${k}]`);
          }
          break;
        case 'after-item':
          if (c === ',') this.state = 'array';
          else if (c === ']') this.state = 'after-value';
          else this.syntax(c, `"," or "]" after ${this.arrayKey}[${this.index - 1}]`);
          i++;
          break;
        case 'after-value':
          if (c === ',') this.state = 'key';
          else if (c === '}') this.state = 'done';
          else this.syntax(c, '"," or "}" after a value');
          i++;
          break;
        case 'done':
          this.syntax(c, 'nothing more after the closing "}"');
      }
    }
  }

  /** Ends the document; throws if it is incomplete. Returns whether the streamed array was present. */
  end(): boolean {
    if (this.state === 'start') throw new DataError(`${this.file}: the file is empty; expected ${this.expected}.`);
    if (this.state !== 'done' || this.keyCapture || this.value) this.syntax('', '"}" closing the document');
    return this.sawArray;
  }
}
