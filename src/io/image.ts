// Image decoding to 8-bit RGB the way PIL + Image.convert('RGB') sees it (sharp, ICC ignored, first frame, no EXIF rotation).
//
// Parity notes (measured against Debian's PIL 9.4, see test/image.test.ts):
// - PIL ignores embedded ICC profiles; sharp applies them unless `ignoreIcc` is set.
// - Neither HF's CLIPImageProcessor nor PIL's open() applies EXIF orientation, so we do not either.
// - convert('RGB') replicates grey, and drops alpha without compositing on any background.
// - Multi-frame files (GIF, animated WebP) yield their first frame.
// Known gaps: 16-bit images are reduced to 8 bits by sharp (PIL clips I;16 instead), and CMYK JPEGs
// go through libvips' colour conversion rather than PIL's naive formula.

import sharp, { type OutputInfo } from 'sharp';
import { DataError } from '../errors.ts';
import { LIMITS } from './limits.ts';
import { readRegularFile } from './read-bounded.ts';

/** A decoded image: interleaved RGB, row-major, width*height*3 bytes. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

function describe(input: string | Uint8Array, label?: string): string {
  if (label !== undefined) return label;
  return typeof input === 'string' ? input : `<buffer of ${input.length} bytes>`;
}

/**
 * Expand interleaved 8-bit pixels with 1-4 channels to RGB like PIL's convert('RGB'):
 * 1 = grey (replicated), 2 = grey+alpha (alpha dropped), 3 = RGB (copied), 4 = RGBA (alpha dropped).
 */
export function toRgb(src: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  const n = width * height;
  if (src.length !== n * channels) {
    throw new DataError(`toRgb: expected ${width}x${height}x${channels} = ${n * channels} bytes, found ${src.length}`);
  }
  if (channels === 3) return src.slice();
  const out = new Uint8Array(n * 3);
  switch (channels) {
    case 1:
      for (let i = 0, o = 0; i < n; i++, o += 3) {
        const g = src[i]!;
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
      }
      break;
    case 2:
      for (let i = 0, p = 0, o = 0; i < n; i++, p += 2, o += 3) {
        const g = src[p]!;
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
      }
      break;
    case 4:
      for (let i = 0, p = 0, o = 0; i < n; i++, p += 4, o += 3) {
        out[o] = src[p]!;
        out[o + 1] = src[p + 1]!;
        out[o + 2] = src[p + 2]!;
      }
      break;
    default:
      throw new DataError(`toRgb: expected 1 to 4 channels, found ${channels}`);
  }
  return out;
}

/**
 * Decode an image file (path) or encoded bytes (JPEG, PNG, GIF, WebP, TIFF, ... whatever sharp reads)
 * into 8-bit RGB. `label` names the source in error messages when a buffer is given.
 * Throws DataError "cannot decode image FILE: reason" for a missing, unreadable or corrupt image.
 */
export async function decodeImage(input: string | Uint8Array, label?: string): Promise<RgbImage> {
  const name = describe(input, label);
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    // A regular file of at most LIMITS.imageBytes: never a device, FIFO or directory (which could block or not end).
    try {
      bytes = readRegularFile(input, 'image', LIMITS.imageBytes);
    } catch (e) {
      // "image X does not exist." / "image X must be a regular file, found a FIFO (named pipe)." / size limit
      const m = (e as Error).message;
      const reason = /does not exist\.$/.test(m)
        ? 'file not found'
        : m.replace(/^image \S+ /, '').replace(/^cannot read image \S+: /, '');
      throw new DataError(`cannot decode image ${name}: ${reason}`);
    }
  } else {
    bytes = input;
    if (bytes.length > LIMITS.imageBytes)
      throw new DataError(
        `cannot decode image ${name}: ${bytes.length} bytes, more than the ${LIMITS.imageBytes}-byte limit for one image`,
      );
  }
  if (bytes.length === 0) throw new DataError(`cannot decode image ${name}: the file is empty`);
  let raw: { data: Buffer; info: OutputInfo };
  try {
    // limitInputPixels is checked from the header before decoding, vector formats (SVG) included.
    raw = await sharp(bytes, {
      ignoreIcc: true,
      autoOrient: false,
      pages: 1,
      page: 0,
      failOn: 'warning',
      limitInputPixels: LIMITS.imagePixels,
    })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    let reason = ((e as Error).message ?? String(e)).split('\n')[0]!.trim();
    if (/pixel limit/i.test(reason))
      reason = `the image is larger than the ${LIMITS.imagePixels}-pixel budget (width × height; sharp says "${reason}")`;
    else if (/unsupported image format/i.test(reason))
      reason = `not a recognised image format (expected JPEG, PNG, GIF, WebP, TIFF, AVIF...; sharp says "${reason}")`;
    throw new DataError(`cannot decode image ${name}: ${reason || 'unknown sharp error'}`);
  }
  const { width, height, channels } = raw.info;
  const data = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length);
  if (data.length !== width * height * channels) {
    throw new DataError(
      `cannot decode image ${name}: decoder returned ${data.length} bytes, expected ${width}x${height}x${channels}`,
    );
  }
  if (channels === 4 && !raw.info.hasAlpha) {
    throw new DataError(
      `cannot decode image ${name}: 4 channels without alpha (CMYK?) are not supported; convert it to RGB first`,
    );
  }
  return { width, height, data: channels === 3 ? data : toRgb(data, width, height, channels) };
}
