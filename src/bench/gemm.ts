// Throughput of the native GEMM path and fused kernels at CLIP ViT-B/32 sizes (B=32, T=50, C=768, NH=12,
// HS=64, F=3072), printing GFLOP/s, with PyTorch's figure from the same run when python3 has torch.
// Run: node --import tsx bench/gemm.ts [threads]   (not a test; numbers depend on the machine)
import { spawnSync } from 'node:child_process';
import { loadNativeKernels } from '../engine/native.ts';

const k = loadNativeKernels();
const threads = Number(process.argv[2] ?? process.env.MOPE_THREADS ?? 2);
k.setThreads(threads);

function rand(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

/** Median seconds per call over `reps` runs after warm-up. */
function time(fn: () => void, reps = 20): number {
  for (let i = 0; i < 3; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

const B = 32,
  T = 50,
  C = 768,
  NH = 12,
  HS = 64,
  F = 3072,
  N = B * T;
const results: Record<string, { ms: number; gflops?: number; gelems?: number }> = {};

{
  const inp = rand(N * C),
    w = rand(F * C, 0.05),
    bias = rand(F),
    out = new Float32Array(N * F);
  const s = time(() => k.linear(out, inp, w, bias, N, C, F));
  results[`linear ${N}x${C} -> ${F}`] = { ms: s * 1e3, gflops: (2 * N * C * F) / s / 1e9 };
}
{
  const a = rand(512 * 768),
    b = rand(768 * 3072),
    c = new Float32Array(512 * 3072);
  const s = time(() => k.gemm(c, a, b, 512, 3072, 768, false, false, 1, 0));
  results['gemm 512x768x3072'] = { ms: s * 1e3, gflops: (2 * 512 * 768 * 3072) / s / 1e9 };
}
{
  const qkv = rand(N * 3 * C),
    out = new Float32Array(N * C),
    probs = new Float32Array(B * NH * T * T);
  const flops = 4 * B * NH * T * T * HS;
  const s1 = time(() => k.attention(out, probs, qkv, null, null, B, T, NH, HS, false));
  results[`attention B=${B} T=${T} NH=${NH} HS=${HS} (probs saved)`] = { ms: s1 * 1e3, gflops: flops / s1 / 1e9 };
  const s2 = time(() => k.attention(out, null, qkv, null, null, B, T, NH, HS, false));
  results[`attention B=${B} T=${T} NH=${NH} HS=${HS} (no probs)`] = { ms: s2 * 1e3, gflops: flops / s2 / 1e9 };
  const km = new Float32Array(B * 77).fill(1);
  const qkvT = rand(B * 77 * 3 * 512),
    outT = new Float32Array(B * 77 * 512);
  const s3 = time(() => k.attention(outT, null, qkvT, km, null, B, 77, 8, 64, true));
  results[`attention text B=${B} T=77 NH=8 HS=64 causal`] = {
    ms: s3 * 1e3,
    gflops: (4 * B * 8 * 77 * 77 * 64) / s3 / 1e9 / 2,
  };
}
{
  const x = rand(N * F, 4),
    y = new Float32Array(N * F);
  const s = time(() => k.activation(y, x, null, N, F, 0));
  results[`quick_gelu ${N}x${F}`] = { ms: s * 1e3, gelems: (N * F) / s / 1e9 };
  const s1 = time(() => k.activation(y, x, null, N, F, 1), 5);
  results[`gelu (erf) ${N}x${F}`] = { ms: s1 * 1e3, gelems: (N * F) / s1 / 1e9 };
  const xi = rand(N * C),
    yo = new Float32Array(N * C),
    w = rand(C),
    b = rand(C),
    m = new Float32Array(N),
    r = new Float32Array(N);
  const s2 = time(() => k.layernorm(yo, m, r, xi, w, b, N, C, 1e-5));
  results[`layernorm ${N}x${C}`] = { ms: s2 * 1e3, gelems: (N * C) / s2 / 1e9 };
}

console.log(`mope-clip native kernels, ${k.getThreads()} threads`);
for (const [name, r] of Object.entries(results)) {
  const rate = r.gflops !== undefined ? `${r.gflops.toFixed(1)} GFLOP/s` : `${r.gelems!.toFixed(2)} G elem/s`;
  console.log(`  ${name.padEnd(52)} ${r.ms.toFixed(3).padStart(9)} ms  ${rate}`);
}
console.log('  (text attention GFLOP/s counts the causal half only)');

// PyTorch from the same run, same thread count, when available
const py = `
import time, torch
torch.set_num_threads(${threads})
def t(f, reps=20):
    for _ in range(3): f()
    ts=[]
    for _ in range(reps):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    ts.sort(); return ts[len(ts)//2]
x=torch.randn(${N},${C}); w=torch.randn(${F},${C}); b=torch.randn(${F})
s=t(lambda: torch.nn.functional.linear(x,w,b)); print(f"  linear: {s*1e3:.3f} ms {2*${N}*${C}*${F}/s/1e9:.1f} GFLOP/s")
q=torch.randn(${B},${NH},${T},${HS}); kk=torch.randn(${B},${NH},${T},${HS}); v=torch.randn(${B},${NH},${T},${HS})
def att():
    p=torch.softmax(q@kk.transpose(-1,-2)*${HS}**-0.5,-1); return p@v
s=t(att); print(f"  attention: {s*1e3:.3f} ms {4*${B}*${NH}*${T}*${T}*${HS}/s/1e9:.1f} GFLOP/s")
`;
const r = spawnSync('python3', ['-c', py], { encoding: 'utf8' });
if (r.status === 0) console.log(`PyTorch (${threads} threads):\n${r.stdout.trimEnd()}`);
else console.log('PyTorch: not available in this environment (python3 -c "import torch" failed), no ratio printed');
