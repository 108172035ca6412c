#!/usr/bin/python3
# PyTorch reference speed for `npm run bench`: a CLIP of a standard geometry with random weights, eager, inference
# only, same batch and thread count as ours; --precision fp32 (plain) or bf16 (torch.autocast("cpu", bfloat16), what a
# PyTorch user switches on for speed). Prints one JSON line {images_per_s, texts_per_s, precision, torch}.
# Dims: B batch, T=77 text tokens, C width, NH heads, F FFN width.
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as Fn

GEOMETRIES = {
    'vit-b-32': dict(v_hidden=768, v_layers=12, v_heads=12, patch=32, image=224, t_hidden=512, t_layers=12, t_heads=8, proj=512),
    'vit-b-16': dict(v_hidden=768, v_layers=12, v_heads=12, patch=16, image=224, t_hidden=512, t_layers=12, t_heads=8, proj=512),
    'vit-l-14': dict(v_hidden=1024, v_layers=24, v_heads=16, patch=14, image=224, t_hidden=768, t_layers=12, t_heads=12, proj=768),
}

class Block(nn.Module):
    def __init__(self, c, nh, causal):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.q, self.k, self.v, self.o = (nn.Linear(c, c) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.nh, self.causal = nh, causal

    def forward(self, x, mask):
        b, t, c = x.shape
        h = self.ln1(x)
        q, k, v = (p(h).view(b, t, self.nh, -1).transpose(1, 2) for p in (self.q, self.k, self.v))
        a = torch.matmul(q, k.transpose(-1, -2)) * (c // self.nh) ** -0.5
        if mask is not None:
            a = a + mask
        a = torch.matmul(a.softmax(-1), v).transpose(1, 2).reshape(b, t, c)
        x = x + self.o(a)
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--geometry', default='vit-b-32')
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=2)
    ap.add_argument('--precision', choices=('fp32', 'bf16'), default='fp32')
    a = ap.parse_args()
    g = GEOMETRIES[a.geometry]
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    grid = (g['image'] // g['patch']) ** 2
    vis = nn.ModuleList(Block(g['v_hidden'], g['v_heads'], False) for _ in range(g['v_layers'])).eval()
    txt = nn.ModuleList(Block(g['t_hidden'], g['t_heads'], True) for _ in range(g['t_layers'])).eval()
    conv = nn.Conv2d(3, g['v_hidden'], g['patch'], g['patch'], bias=False)
    cls = torch.randn(g['v_hidden']); vpos = torch.randn(grid + 1, g['v_hidden'])
    tok = nn.Embedding(49408, g['t_hidden']); tpos = torch.randn(77, g['t_hidden'])
    vln_pre, vln_post, tln = nn.LayerNorm(g['v_hidden']), nn.LayerNorm(g['v_hidden']), nn.LayerNorm(g['t_hidden'])
    vproj, tproj = nn.Linear(g['v_hidden'], g['proj'], bias=False), nn.Linear(g['t_hidden'], g['proj'], bias=False)
    causal = torch.full((77, 77), float('-inf')).triu(1)

    def image_features(px):
        x = conv(px).flatten(2).transpose(1, 2)
        x = torch.cat([cls.expand(x.shape[0], 1, -1), x], 1) + vpos
        x = vln_pre(x)
        for blk in vis:
            x = blk(x, None)
        return vproj(vln_post(x[:, 0]))

    def text_features(ids):
        x = tok(ids) + tpos
        for blk in txt:
            x = blk(x, causal)
        x = tln(x)
        return tproj(x[torch.arange(ids.shape[0]), ids.argmax(-1)])

    px = torch.randn(a.batch, 3, g['image'], g['image'])
    ids = torch.randint(1, 49406, (a.batch, 77)); ids[:, 0] = 49406; ids[:, -1] = 49407
    out = {}
    bf16 = a.precision == 'bf16'
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        for name, fn, inp in (('images_per_s', image_features, px), ('texts_per_s', text_features, ids)):
            fn(inp)  # warm-up
            best, cpu = float('inf'), float('inf')
            for _ in range(a.iters):  # best of --iters, as ours; CPU time of all threads, as ours
                t0, c0 = time.perf_counter(), time.process_time()
                fn(inp)
                best = min(best, time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0)
            out[name] = a.batch / best
            out[name.replace('_per_s', '_per_cpu_s')] = a.batch / cpu
    out['precision'] = a.precision
    out['torch'] = torch.__version__
    print(json.dumps(out))

if __name__ == '__main__':
    main()
