// `train --init GEOMETRY`: a fresh, seeded model from a named geometry (tiny, vit-b-32, …) or a GEOMETRY.json file
// holding a ClipGeometry (src/model/init.ts), with the bundled CLIP tokenizer and the default preprocessing for its
// image size. Dims: those of ClipGeometry.
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { defaultPreprocessorConfig } from '../io/preprocess.ts';
import { ClipTokenizer } from '../io/tokenizer.ts';
import { GEOMETRIES, initClipModel, type ClipGeometry, type GeometryName } from '../model/init.ts';
import type { ModelFiles } from './checkpoint.ts';

/** A geometry from a name or a JSON file ({text, vision, projectionDim}, or that object under "geometry"). */
export function readGeometry(spec: string, flag = '--init'): ClipGeometry {
  if (spec in GEOMETRIES) return structuredClone(GEOMETRIES[spec as GeometryName]);
  if (!existsSync(spec)) {
    throw new ConfigError(
      `${flag} ${spec}: neither a geometry name (${Object.keys(GEOMETRIES).join(', ')}) nor an existing JSON file.`,
    );
  }
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(spec, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${flag} ${spec}: not valid JSON (${(e as Error).message}).`);
  }
  const g = (
    j && typeof j === 'object' && 'geometry' in j ? (j as { geometry: unknown }).geometry : j
  ) as Partial<ClipGeometry> | null;
  const tower = (t: unknown, name: string, extra: string[]) => {
    if (!t || typeof t !== 'object')
      throw new ConfigError(
        `${flag} ${spec}: "${name}" must be an object with hidden, layers, heads, ffn${extra.map((x) => ', ' + x).join('')}.`,
      );
    for (const k of ['hidden', 'layers', 'heads', 'ffn', ...extra]) {
      if (!(k in t)) throw new ConfigError(`${flag} ${spec}: "${name}.${k}" is missing.`);
    }
  };
  if (!g || typeof g !== 'object')
    throw new ConfigError(`${flag} ${spec}: expected an object {text, vision, projectionDim}.`);
  tower(g.text, 'text', []);
  tower(g.vision, 'vision', ['imageSize', 'patchSize']);
  if (typeof g.projectionDim !== 'number') throw new ConfigError(`${flag} ${spec}: "projectionDim" must be a number.`);
  return g as ClipGeometry;
}

/** A seeded random model of the geometry with the bundled tokenizer and OpenAI preprocessing at its image size. */
export function initModelFiles(geometry: ClipGeometry, seed: number): ModelFiles {
  const model = initClipModel(geometry, seed);
  const tokenizer = ClipTokenizer.fromBundledVocab({ contextLength: model.config.text.maxPositions });
  if (model.config.text.vocabSize < tokenizer.vocabSize) {
    throw new ConfigError(
      `--init: text.vocabSize ${model.config.text.vocabSize} is smaller than the bundled CLIP tokenizer's ${tokenizer.vocabSize} tokens.`,
    );
  }
  return { model, tokenizer, preprocess: defaultPreprocessorConfig(model.config.vision.imageSize) };
}
