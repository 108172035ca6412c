// The demo's teacher: its geometry and training recipe (contrastive training from scratch on builtin:fashion-mix),
// training it through the ordinary training loop (resumable), and the shipped copy in assets/demo-teacher/ (F16
// weights, gzipped, with the token-embedding rows that training never touched set to zero so that the file
// compresses; those rows are still their random initial values otherwise). Dims: see DEMO_GEOMETRY.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Runtime } from '../engine/runtime.ts';
import { openDataset } from '../data/spec.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.ts';
import { serializePreprocessorConfig } from '../io/preprocess.ts';
import { ClipTokenizer } from '../io/tokenizer.ts';
import { writeTokenizerFolder } from '../io/tokenizer-files.ts';
import { initClipModel, type ClipGeometry } from '../model/init.ts';
import type { ClipModel } from '../model/types.ts';
import { initModelFiles } from '../train/init-geometry.ts';
import { trainLoop } from '../train/loop.ts';

/** 48 px images in 8 px patches (36 patches + class token), text context 40 (the longest scene caption is 33 tokens). */
export const DEMO_GEOMETRY: ClipGeometry = {
  text: { hidden: 128, layers: 3, heads: 4, ffn: 512, maxPositions: 40 },
  vision: { hidden: 128, layers: 4, heads: 4, ffn: 512, imageSize: 48, patchSize: 8 },
  projectionDim: 128,
};

export interface TeacherRecipe {
  data: string;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  gradClip: number;
  seed: number;
}

export const DEMO_RECIPE: TeacherRecipe = {
  data: 'builtin:fashion-mix:train',
  steps: 2000,
  batch: 128,
  lr: 2e-3,
  warmup: 100,
  weightDecay: 0.1,
  gradClip: 1,
  seed: 1,
};

/** The `mope-clip train` command line that trains the same weights (the demo then zeroes the untouched token rows). */
export function teacherCommand(
  r: TeacherRecipe,
  out: string,
  geometryFile = 'assets/demo-teacher/geometry.json',
): string {
  return (
    `mope-clip train --init ${geometryFile} --data ${r.data} --steps ${r.steps} --batch ${r.batch} --lr ${r.lr} ` +
    `--warmup ${r.warmup} --weight-decay ${r.weightDecay} --grad-clip ${r.gradClip} --seed ${r.seed} --out ${out}`
  );
}

/** Repository root (two levels above this file). */
export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHIPPED_TEACHER = join(PACKAGE_DIR, 'assets', 'demo-teacher');
const SHIPPED_WEIGHTS = 'model.safetensors.gz';

/**
 * Sets the token-embedding rows that still hold their initial values (tokens no training caption contains, which never
 * got a gradient) to zero. Returns how many rows were zeroed.
 */
export function zeroUntouchedTokens(model: ClipModel, geometry: ClipGeometry, seed: number): number {
  const init = initClipModel(geometry, seed).weights.text.tokenEmbedding;
  const emb = model.weights.text.tokenEmbedding,
    C = model.config.text.hidden;
  let n = 0;
  for (let v = 0; v < model.config.text.vocabSize; v++) {
    const a = emb.subarray(v * C, (v + 1) * C),
      b = init.subarray(v * C, (v + 1) * C);
    if (a.every((x, i) => x === b[i])) {
      a.fill(0);
      n++;
    }
  }
  return n;
}

/**
 * Trains the teacher into runDir (resumes an interrupted run), then writes the demo's teacher folder `dir`: the trained
 * weights with untouched token rows zeroed, tokenizer and preprocessing files.
 */
export async function trainTeacher(
  rt: Runtime,
  runDir: string,
  dir: string,
  r: TeacherRecipe = DEMO_RECIPE,
): Promise<{ seconds: number; cpuSeconds: number; zeroed: number }> {
  const cpu0 = process.cpuUsage();
  const student = initModelFiles(DEMO_GEOMETRY, r.seed);
  mkdirSync(runDir, { recursive: true });
  writeJsonAtomic(join(runDir, 'geometry.json'), DEMO_GEOMETRY);
  rt.log.info(
    `training the teacher from scratch (≈ ${r.steps} steps of ${r.batch} pairs); same as: ${teacherCommand(r, runDir, join(runDir, 'geometry.json'))}`,
  );
  const res = await trainLoop(rt, {
    student,
    data: openDataset(r.data).dataset,
    steps: r.steps,
    batch: r.batch,
    seed: r.seed,
    out: runDir,
    resume: true,
    optim: { lr: r.lr, warmup: r.warmup, weightDecay: r.weightDecay, gradClip: r.gradClip },
    saveEvery: 100,
    logEvery: 25,
    flags: {
      command: 'demo-teacher',
      init: DEMO_GEOMETRY,
      data: r.data,
      batch: r.batch,
      lr: r.lr,
      weight_decay: r.weightDecay,
      warmup: r.warmup,
      grad_clip: r.gradClip,
      seed: r.seed,
    },
  });
  const model = loadCheckpoint(runDir);
  const zeroed = zeroUntouchedTokens(model, DEMO_GEOMETRY, r.seed);
  mkdirSync(dir, { recursive: true });
  saveCheckpoint(model, dir);
  writeTokenizerFolder(student.tokenizer, dir);
  writeJsonAtomic(join(dir, 'preprocessor_config.json'), serializePreprocessorConfig(student.preprocess));
  const cpu = process.cpuUsage(cpu0);
  return { seconds: res.seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, zeroed };
}

/** Whether assets/demo-teacher holds a shipped teacher. */
export function hasShippedTeacher(): boolean {
  return existsSync(join(SHIPPED_TEACHER, SHIPPED_WEIGHTS)) && existsSync(join(SHIPPED_TEACHER, 'config.json'));
}

/** Unpacks the shipped teacher into dir (weights, config, preprocessing, and the bundled tokenizer's files). */
export function unpackShippedTeacher(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'model.safetensors'), gunzipSync(readFileSync(join(SHIPPED_TEACHER, SHIPPED_WEIGHTS))));
  for (const f of ['config.json', 'preprocessor_config.json'])
    writeFileAtomic(join(dir, f), readFileSync(join(SHIPPED_TEACHER, f)));
  const model = loadCheckpoint(dir);
  writeTokenizerFolder(ClipTokenizer.fromBundledVocab({ contextLength: model.config.text.maxPositions }), dir);
}

/** Writes a teacher folder into assets/demo-teacher as F16, gzipped (what `mope-clip demo --ship-teacher` does). */
export function shipTeacher(teacherDir: string, meta: Record<string, unknown>): void {
  mkdirSync(SHIPPED_TEACHER, { recursive: true });
  const tmp = join(SHIPPED_TEACHER, '.f16');
  saveCheckpoint(loadCheckpoint(teacherDir), tmp, { dtype: 'F16' });
  writeFileAtomic(
    join(SHIPPED_TEACHER, SHIPPED_WEIGHTS),
    gzipSync(readFileSync(join(tmp, 'model.safetensors')), { level: 9 }),
  );
  writeFileAtomic(join(SHIPPED_TEACHER, 'config.json'), readFileSync(join(tmp, 'config.json')));
  writeFileAtomic(
    join(SHIPPED_TEACHER, 'preprocessor_config.json'),
    readFileSync(join(teacherDir, 'preprocessor_config.json')),
  );
  rmSync(tmp, { recursive: true, force: true });
  writeJsonAtomic(join(SHIPPED_TEACHER, 'geometry.json'), DEMO_GEOMETRY);
  writeFileSync(join(SHIPPED_TEACHER, 'teacher.json'), JSON.stringify(meta, null, 2) + '\n');
}
