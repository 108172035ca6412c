# Independent PyTorch autograd reference for training: the MoPE-CLIP losses on top of
# tools/torch_clip.py's forward, parameter gradients by HF name, and an AdamW trajectory with torch.optim.
# Dims: B pairs, E projection dim, T tokens, C width; gradients have the HF state-dict shapes.
"""
Written from the issue's formulas with torch's own ops (F.cross_entropy, F.kl_div, autograd, torch.optim.AdamW,
LambdaLR, clip_grad_norm_), not from our TypeScript. Library use:

    m = trainable(tc.load_checkpoint(folder, torch.float64))
    out = clip_losses(m, teacher, ids, mask, px, weights, masks=None)   # dict of loss tensors
    grads = grads_by_name(m, out["total"])
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_clip as tc  # noqa: E402

MAX_LOGIT_SCALE = math.log(100)


def trainable(model):
    """Makes every tensor of the state dict a leaf that requires grad."""
    model["sd"] = {k: v.detach().clone().requires_grad_(True) for k, v in model["sd"].items()}
    return model


def layer_map(folder_cfg, tower):
    mope = folder_cfg.get("mope_clip", {}) or {}
    n = folder_cfg[f"{tower}_config"]["num_hidden_layers"]
    return list((mope.get(tower) or {}).get("layer_map", range(n)))


def clip_losses(student, teacher, ids, mask, px, w, masks=None):
    """All loss parts of the student (with masks) against an optional teacher. w: w_con w_kd w_emb w_hid tau
    (one weight per term; L_hid is a mean over towers and matched layer pairs)."""
    st = tc.text_forward(student, ids, mask, masks=(masks or {}).get("text"))
    sv = tc.vision_forward(student, px, masks=(masks or {}).get("vision"))
    img = F.normalize(sv["embeds"], dim=-1)
    txt = F.normalize(st["embeds"], dim=-1)
    S = student["sd"]["logit_scale"].exp() * img @ txt.T  # rows images, columns texts
    B = S.shape[0]
    labels = torch.arange(B)
    con = 0.5 * (F.cross_entropy(S, labels) + F.cross_entropy(S.T, labels))
    out = {"con": con, "total": w["w_con"] * con}
    if teacher is None:
        return out
    with torch.no_grad():
        tt = tc.text_forward(teacher, ids, mask)
        tv = tc.vision_forward(teacher, px)
        timg = F.normalize(tv["embeds"], dim=-1)
        ttxt = F.normalize(tt["embeds"], dim=-1)
        St = teacher["sd"]["logit_scale"].exp() * timg @ ttxt.T
    tau = w["tau"]

    def kl(s_logits, t_logits):
        return F.kl_div(F.log_softmax(s_logits / tau, dim=1), F.log_softmax(t_logits / tau, dim=1),
                        reduction="batchmean", log_target=True)

    kd = tau * tau * 0.5 * (kl(S, St) + kl(S.T, St.T))
    emb = 0.5 * (((img - timg) ** 2).sum(-1).mean() + ((txt - ttxt) ** 2).sum(-1).mean())
    # hidden states: student layer j vs teacher layer m(j); text rows BOS..EOS (pool index) only
    lengths = st["pool_index"] + 1
    T = ids.shape[1]
    tmask = (torch.arange(T)[None, :] < lengths[:, None]).to(S.dtype)[:, :, None]  # [B,T,1]
    per_tower = []
    for tower, s_out, t_out in (("text", st, tt), ("vision", sv, tv)):
        smap = layer_map(student["config"], tower)
        tmap = layer_map(teacher["config"], tower)
        terms = []
        for j, orig in enumerate(smap):
            tl = tmap.index(orig)
            d2 = (s_out["hidden"][j + 1] - t_out["hidden"][tl + 1]) ** 2
            if tower == "text":
                terms.append((d2 * tmask).sum() / (tmask.sum() * d2.shape[-1]))
            else:
                terms.append(d2.mean())
        per_tower.append(torch.stack(terms).mean())
    hid = torch.stack(per_tower).mean()
    out.update({"kd": kd, "emb": emb, "hid": hid})
    out["total"] = w["w_con"] * con + w["w_kd"] * kd + w["w_emb"] * emb + w["w_hid"] * hid
    return out


def grads_by_name(model, loss):
    names = list(model["sd"].keys())
    gs = torch.autograd.grad(loss, [model["sd"][n] for n in names], allow_unused=True)
    return {n: (g if g is not None else torch.zeros_like(model["sd"][n])) for n, g in zip(names, gs)}


def no_decay(name):
    return (name == "logit_scale" or name.endswith(".bias") or "layer_norm" in name or "layrnorm" in name
            or "layernorm" in name or "token_embedding" in name or "position_embedding" in name
            or "class_embedding" in name)


def lr_lambda(warmup, total, min_ratio=0.0):
    """Multiplier of step s (0-based count of steps already taken, as LambdaLR passes it)."""
    def f(done):
        s = done + 1
        if warmup > 0 and s <= warmup:
            return s / warmup
        if total <= warmup:
            return 1.0
        p = min(1.0, max(0.0, (s - 1 - warmup) / (total - warmup)))  # HF cosine-with-warmup progress
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))
    return f


def adamw_trajectory(model, loss_fn, steps, lr, wd, betas, eps, warmup, clip):
    """Runs `steps` AdamW steps of loss_fn(model); returns per-step losses, lrs, grad norms (before clipping)."""
    sd = model["sd"]
    decay = [p for n, p in sd.items() if not no_decay(n)]
    nodecay = [p for n, p in sd.items() if no_decay(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=lr, betas=betas, eps=eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup, steps))
    losses, lrs, norms = [], [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(sd.values()), clip if clip > 0 else float("inf"))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        with torch.no_grad():
            sd["logit_scale"].clamp_(max=MAX_LOGIT_SCALE)
        losses.append(float(loss))
        norms.append(float(norm))
    return losses, lrs, norms
