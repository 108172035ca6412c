#!/usr/bin/python3
# PyTorch twin of `mope-clip bench --mode train` (src/train/bench-train.ts): one distillation step of a half-width
# ViT-B/32 student (vision 6 heads / FFN 1536, text 4 heads / FFN 1024, head size 64) against the full frozen ViT-B/32
# teacher — teacher forward under no_grad, student forward, L_con + L_kd + L_emb + L_hid, backward, AdamW — fp32
# eager, same batch, tokens and threads. Prints one JSON line {pairs_per_s, step_s, torch}.
# Dims: B batch, T=77 tokens, C width, NH heads, HS 64 head size, F FFN width, E 512.
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as Fn


class Block(nn.Module):
    def __init__(self, c, nh, f):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.o = nn.Linear(c, 3 * nh * 64), nn.Linear(nh * 64, c)
        self.fc1, self.fc2 = nn.Linear(c, f), nn.Linear(f, c)
        self.nh = nh

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.nh, 64).permute(2, 0, 3, 1, 4)
        a = torch.matmul(q, k.transpose(-1, -2)) * 0.125
        if mask is not None:
            a = a + mask
        a = torch.matmul(a.softmax(-1), v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.o(a)
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class Clip(nn.Module):
    def __init__(self, v_heads, v_ffn, t_heads, t_ffn):
        super().__init__()
        self.conv = nn.Conv2d(3, 768, 32, 32, bias=False)
        self.cls = nn.Parameter(torch.randn(768) * 0.02)
        self.vpos = nn.Parameter(torch.randn(50, 768) * 0.02)
        self.ln_pre, self.ln_post = nn.LayerNorm(768), nn.LayerNorm(768)
        self.vis = nn.ModuleList(Block(768, v_heads, v_ffn) for _ in range(12))
        self.vproj = nn.Linear(768, 512, bias=False)
        self.tok = nn.Embedding(49408, 512)
        self.tpos = nn.Parameter(torch.randn(77, 512) * 0.01)
        self.txt = nn.ModuleList(Block(512, t_heads, t_ffn) for _ in range(12))
        self.ln_final = nn.LayerNorm(512)
        self.tproj = nn.Linear(512, 512, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        self.register_buffer('causal', torch.full((77, 77), float('-inf')).triu(1))

    def image(self, px):
        x = self.conv(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        x = self.ln_pre(x)
        hs = []
        for blk in self.vis:
            x = blk(x, None)
            hs.append(x)
        return self.vproj(self.ln_post(x[:, 0])), hs

    def text(self, ids):
        x = self.tok(ids) + self.tpos[: ids.shape[1]]
        hs = []
        for blk in self.txt:
            x = blk(x, self.causal)
            hs.append(x)
        x = self.ln_final(x)
        return self.tproj(x[torch.arange(x.shape[0]), ids.argmax(-1)]), hs


def sims(img, txt, s):
    i, t = Fn.normalize(img, dim=-1), Fn.normalize(txt, dim=-1)
    return i, t, s.exp() * i @ t.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=2)
    ap.add_argument('--precision', choices=('fp32', 'bf16'), default='fp32')
    a = ap.parse_args()
    bf16 = a.precision == 'bf16'
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    teacher = Clip(12, 3072, 8, 2048).eval().requires_grad_(False)
    student = Clip(6, 1536, 4, 1024)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    B = a.batch
    px = torch.randn(B, 3, 224, 224)
    ids = torch.randint(0, 49406, (B, 77))
    ids[:, 0], ids[:, -1] = 49406, 49407
    labels = torch.arange(B)

    def losses():
        with torch.no_grad():
            ti, thv = teacher.image(px)
            tt, tht = teacher.text(ids)
            ti, tt, ts = sims(ti, tt, teacher.logit_scale)
        si, shv = student.image(px)
        st, sht = student.text(ids)
        si, st, ss = sims(si, st, student.logit_scale)
        con = 0.5 * (Fn.cross_entropy(ss, labels) + Fn.cross_entropy(ss.T, labels))
        kd = 0.5 * (Fn.kl_div(ss.log_softmax(-1), ts.log_softmax(-1), log_target=True, reduction='batchmean')
                    + Fn.kl_div(ss.T.log_softmax(-1), ts.T.log_softmax(-1), log_target=True, reduction='batchmean'))
        emb = 0.5 * (((si - ti) ** 2).sum(-1).mean() + ((st - tt) ** 2).sum(-1).mean())
        hid = 0.5 * (sum(Fn.mse_loss(s, t) for s, t in zip(shv, thv)) / 12 + sum(Fn.mse_loss(s, t) for s, t in zip(sht, tht)) / 12)
        return con + kd + emb + hid

    def step():
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = losses()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    step()
    best, cpu = float('inf'), float('inf')
    for _ in range(a.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    print(json.dumps({'pairs_per_s': B / best, 'pairs_per_cpu_s': B / cpu, 'step_s': best, 'batch': B, 'threads': a.threads, 'precision': a.precision, 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
