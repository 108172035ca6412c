// Loads the native kernel library (build/Release/mope_native.node, built from native/ by node-gyp) and
// returns it typed as the Kernels contract. Dims: see src/engine/kernels.ts.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.ts';
import { bf16Kernels, type DnnlKernels, type Precision } from './precision.ts';

const require = createRequire(import.meta.url);

/** The folder holding this package's package.json, found by walking up from this file. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`mope-clip: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

let cached: Kernels | undefined;

/**
 * Environment read once by OpenBLAS and libgomp when the addon loads, so it must be set before `require`.
 * Only variables the user has not set are touched.
 * - OPENBLAS_CORETYPE: Debian's OpenBLAS 0.3.21 does not know recent Xeons (e.g. family 6 model 207) and falls
 *   back to its SSE3 "Prescott" kernels, several times slower; SkylakeX (AVX-512) or Haswell (AVX2) kernels
 *   are chosen from the CPU flags instead. Their fp32 GEMM is the same as newer targets' for fp32.
 * - OMP_WAIT_POLICY=PASSIVE: OpenMP workers otherwise spin for milliseconds after each kernel and compete for
 *   the same cores with OpenBLAS's own threads in the GEMM that follows.
 */
function prepareEnvironment(): void {
  if (process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  if (process.env.OPENBLAS_CORETYPE !== undefined || process.platform !== 'linux' || process.arch !== 'x64') return;
  let flags: Set<string>;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return;
  }
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'].every((f) => flags.has(f))) {
    process.env.OPENBLAS_CORETYPE = 'SkylakeX';
  } else if (['avx2', 'fma'].every((f) => flags.has(f))) {
    process.env.OPENBLAS_CORETYPE = 'Haswell';
  }
}

/** The native kernels (one instance per process: the addon's thread setting is process-wide). */
export function loadNativeKernels(): Kernels {
  if (cached) return cached;
  const root = packageRoot();
  const file = join(root, 'build', 'Release', 'mope_native.node');
  if (!existsSync(file)) {
    throw new Error(
      `mope-clip: the native kernel library ${file} is missing. Build it with \`npm run build:native\` ` +
        `in ${root} (needs a C compiler, python3, and OpenBLAS: apt-get install libopenblas-dev).`,
    );
  }
  prepareEnvironment();
  let addon: Kernels;
  try {
    addon = require(file) as Kernels;
  } catch (e) {
    throw new Error(
      `mope-clip: could not load ${file} (${(e as Error).message}). Rebuild it with \`npm run build:native\`; ` +
        `libopenblas-dev (libopenblas.so.0) must be installed.`,
    );
  }
  cached = addon;
  return addon;
}

let cachedBf16: Kernels | undefined;
let cachedF32Dnnl: Kernels | undefined;

/** The oneDNN entry points of the native addon. */
export function loadDnnl(): DnnlKernels {
  return loadNativeKernels() as Kernels & DnnlKernels;
}

/**
 * Kernels computing at the given precision: fp32 is the native addon itself (OpenBLAS, exact path); bf16 routes
 * the linear layers through oneDNN. One bf16 instance per process, so packed weights are shared by every caller.
 * MOPE_FP32_GEMM=onednn routes fp32 linear layers through oneDNN's fp32 matmul on packed weights instead of
 * OpenBLAS (faster on CPUs OpenBLAS 0.3.21 serves poorly, e.g. AMD Zen 4; another summation order than the
 * parity-checked OpenBLAS path).
 */
export function loadKernels(precision: Precision): Kernels {
  const k = loadNativeKernels();
  if (precision === 'fp32') {
    if (process.env.MOPE_FP32_GEMM !== 'onednn') return k;
    return (cachedF32Dnnl ??= bf16Kernels(k as Kernels & DnnlKernels, false));
  }
  return (cachedBf16 ??= bf16Kernels(k as Kernels & DnnlKernels));
}
