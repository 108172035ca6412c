// Zero-shot prompt templates: OpenAI's 80 ImageNet templates, their 7-template subset, and a template-file reader.
import { checkLineLengths, readRegularText } from '../io/read-bounded.ts';
import { LIMITS } from '../io/limits.ts';
import { DataError } from '../errors.ts';

/** OpenAI's 80 ImageNet prompt templates (CLIP notebook "Prompt_Engineering_for_ImageNet"), verbatim, in order. */
export const OPENAI_IMAGENET_TEMPLATES: readonly string[] = Object.freeze([
  'a bad photo of a {}.',
  'a photo of many {}.',
  'a sculpture of a {}.',
  'a photo of the hard to see {}.',
  'a low resolution photo of the {}.',
  'a rendering of a {}.',
  'graffiti of a {}.',
  'a bad photo of the {}.',
  'a cropped photo of the {}.',
  'a tattoo of a {}.',
  'the embroidered {}.',
  'a photo of a hard to see {}.',
  'a bright photo of a {}.',
  'a photo of a clean {}.',
  'a photo of a dirty {}.',
  'a dark photo of the {}.',
  'a drawing of a {}.',
  'a photo of my {}.',
  'the plastic {}.',
  'a photo of the cool {}.',
  'a close-up photo of a {}.',
  'a black and white photo of the {}.',
  'a painting of the {}.',
  'a painting of a {}.',
  'a pixelated photo of the {}.',
  'a sculpture of the {}.',
  'a bright photo of the {}.',
  'a cropped photo of a {}.',
  'a plastic {}.',
  'a photo of the dirty {}.',
  'a jpeg corrupted photo of a {}.',
  'a blurry photo of the {}.',
  'a photo of the {}.',
  'a good photo of the {}.',
  'a rendering of the {}.',
  'a {} in a video game.',
  'a photo of one {}.',
  'a doodle of a {}.',
  'a close-up photo of the {}.',
  'a photo of a {}.',
  'the origami {}.',
  'the {} in a video game.',
  'a sketch of a {}.',
  'a doodle of the {}.',
  'a origami {}.',
  'a low resolution photo of a {}.',
  'the toy {}.',
  'a rendition of the {}.',
  'a photo of the clean {}.',
  'a photo of a large {}.',
  'a rendition of a {}.',
  'a photo of a nice {}.',
  'a photo of a weird {}.',
  'a blurry photo of a {}.',
  'a cartoon {}.',
  'art of a {}.',
  'a sketch of the {}.',
  'a embroidered {}.',
  'a pixelated photo of a {}.',
  'itap of the {}.',
  'a jpeg corrupted photo of the {}.',
  'a good photo of a {}.',
  'a plushie {}.',
  'a photo of the nice {}.',
  'a photo of the small {}.',
  'a photo of the weird {}.',
  'the cartoon {}.',
  'art of the {}.',
  'a drawing of the {}.',
  'a photo of the large {}.',
  'a black and white photo of a {}.',
  'the plushie {}.',
  'a dark photo of a {}.',
  'itap of a {}.',
  'graffiti of the {}.',
  'a toy {}.',
  'itap of my {}.',
  'a photo of a cool {}.',
  'a photo of a small {}.',
  'a tattoo of the {}.',
]);

/** The 7-template subset chosen by sequential forward selection in the same notebook (the default). */
export const OPENAI_SIMPLE_TEMPLATES: readonly string[] = Object.freeze([
  'itap of a {}.',
  'a bad photo of the {}.',
  'a origami {}.',
  'a photo of the large {}.',
  'a {} in a video game.',
  'art of the {}.',
  'a photo of the small {}.',
]);

/**
 * Resolves a --templates value: undefined or "openai-7" → the 7-template subset, "openai-80" → all 80,
 * anything else → a template file path (see readTemplateFile).
 */
export function resolveTemplates(value?: string): string[] {
  if (value === undefined || value === 'openai-7') return [...OPENAI_SIMPLE_TEMPLATES];
  if (value === 'openai-80') return [...OPENAI_IMAGENET_TEMPLATES];
  return readTemplateFile(value);
}

/**
 * A template file: UTF-8 text, one template per line, each containing "{}" (where the class name goes).
 * Blank lines and lines starting with "#" are skipped; surrounding whitespace is trimmed.
 */
export function readTemplateFile(path: string): string[] {
  const text = readRegularText(path, 'template file', LIMITS.textBytes, DataError);
  checkLineLengths(text, path);
  return parseTemplates(text, path);
}

export function parseTemplates(text: string, source = '<templates>'): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!line.includes('{}')) {
      throw new DataError(
        `${source}:${i + 1}: a template must contain "{}" where the class name goes; found "${line}".`,
      );
    }
    out.push(line);
  });
  if (out.length === 0)
    throw new DataError(`${source}: no templates found; expected one template per line containing {}.`);
  return out;
}

/** Fills every "{}" of a template with the class name. */
export function fillTemplate(template: string, classname: string): string {
  return template.split('{}').join(classname);
}
