# Independent reference of the MoPE definition: modules REMOVED BY WEIGHT DELETION (smaller tensors), Z and loss in float64.
# Dims: N calibration pairs, S image side, T_i tokens of caption i, C width, NH_l heads, HS head size, F_l FFN width, E proj.
"""
Run with Debian's torch:  /usr/bin/python3 tools/mope_reference.py
Writes test/golden/mope/{checkpoint/config.json, checkpoint/model.safetensors, pixels.safetensors,
calibration.json, expected.json}; test/mope-golden.test.ts runs our scoreMope on the same inputs.

Written from the definition of the module-wise pruning error, not from our TypeScript:
  MoPE(θ) = Z(model) − Z(model without θ), loss_increase = loss(without θ) − loss(model), task retrieval:
  Z = ½(i2t R@1 + t2i R@1) over N images with their first (only) caption, ties toward the lower index;
  loss = ½[CE(S, diag) + CE(Sᵀ, diag)], S = exp(logit_scale)·Î·T̂ᵀ, L2-normalised embeddings, mean over rows.
Removing a module builds a smaller state dict: a head drops its q/k/v rows (weights and biases) and its
out_proj columns; an FFN group drops its fc1 rows (and biases) and fc2 columns (fc2's bias stays); a layer is
deleted and the later layers renumbered. tools/torch_clip.py reads the widths from the tensor shapes.

Calibration: a pool of random images and random captions (ids never BOS/EOS inside, ids above EOS occur) is
embedded by the unpruned model; N pairs are picked greedily by highest similarity so the base model retrieves
most of them, and the seed is advanced until every Z decision in every variant has a margin of at least
MARGIN (the float32 engine must reach the same R@1 decisions, so MoPE can be compared exactly).
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402  (config_for, random_weights; VOCAB 1000, BOS 499, EOS 500)
import torch_clip as tc  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "golden", "mope")
SHAPE = dict(act="quick_gelu", wdtype=np.float32,
             text=dict(hidden=32, layers=3, heads=4, ffn=56),
             vision=dict(hidden=32, layers=3, heads=4, ffn=56, image=16, patch=4),
             proj=16)
FFN_GROUP = 24  # 56 neurons → groups of 24, 24, 8: the last group is smaller
N_PAIRS, POOL = 12, 40
MARGIN = 1e-4
SEED = 4242


def heads_of(sd, prefix, l, hs):
    return sd[f"{prefix}.encoder.layers.{l}.self_attn.q_proj.weight"].shape[0] // hs


def n_layers(sd, prefix):
    return tc._layers(sd, prefix)


def remove_head(sd, prefix, l, h, hs):
    out = dict(sd)
    p = f"{prefix}.encoder.layers.{l}.self_attn."
    nh = heads_of(sd, prefix, l, hs)
    keep = torch.tensor([i for i in range(nh * hs) if not (h * hs <= i < (h + 1) * hs)], dtype=torch.long)
    for q in ("q_proj", "k_proj", "v_proj"):
        out[p + q + ".weight"] = sd[p + q + ".weight"][keep, :].clone()
        out[p + q + ".bias"] = sd[p + q + ".bias"][keep].clone()
    out[p + "out_proj.weight"] = sd[p + "out_proj.weight"][:, keep].clone()
    return out


def remove_ffn(sd, prefix, l, start, end):
    out = dict(sd)
    p = f"{prefix}.encoder.layers.{l}.mlp."
    F_ = sd[p + "fc1.weight"].shape[0]
    keep = torch.tensor([i for i in range(F_) if not (start <= i < end)], dtype=torch.long)
    out[p + "fc1.weight"] = sd[p + "fc1.weight"][keep, :].clone()
    out[p + "fc1.bias"] = sd[p + "fc1.bias"][keep].clone()
    out[p + "fc2.weight"] = sd[p + "fc2.weight"][:, keep].clone()  # fc2.bias stays
    return out


def remove_layer(sd, prefix, l):
    L = n_layers(sd, prefix)
    out = {}
    lp = f"{prefix}.encoder.layers."
    for k, v in sd.items():
        if not k.startswith(lp):
            out[k] = v
            continue
        i, rest = k[len(lp):].split(".", 1)
        i = int(i)
        if i < l:
            out[k] = v
        elif i > l:
            out[f"{lp}{i - 1}.{rest}"] = v
    assert n_layers(out, prefix) == L - 1
    return out


def embed_images(model, pixels):
    with torch.no_grad():
        return tc.vision_forward(model, pixels)["embeds"].numpy()


def embed_texts(model, captions):
    """One caption at a time, unpadded (no attention mask needed)."""
    with torch.no_grad():
        return np.concatenate([tc.text_forward(model, np.asarray([c], dtype=np.int64))["embeds"].numpy() for c in captions])


def sims(img, txt):
    i = img / np.linalg.norm(img, axis=1, keepdims=True)
    t = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    return i @ t.T  # [N images, N captions]


def objective(S, scale):
    """Z, loss and the smallest R@1 decision margin of an N×N similarity matrix (row i = image i)."""
    N = S.shape[0]
    i2t = sum(1 for i in range(N) if int(np.argmax(S[i])) == i)  # np.argmax: first maximum = lower index
    t2i = sum(1 for j in range(N) if int(np.argmax(S[:, j])) == j)
    z = (i2t / N + t2i / N) / 2

    def ce(M):
        m = M.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(M - m).sum(axis=1)))
        return float(np.mean(lse - np.diag(M)))

    loss = (ce(scale * S) + ce(scale * S.T)) / 2
    margin = math.inf
    for A in (S, S.T):
        for i in range(N):
            others = np.delete(A[i], i)
            margin = min(margin, abs(A[i, i] - others.max()))
    return z, loss, margin


def make_checkpoint(folder, rng):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(mg.config_for(SHAPE), f, indent=2)
        f.write("\n")
    tc.write_safetensors(os.path.join(folder, "model.safetensors"), mg.random_weights(SHAPE, rng))


def random_caption(rng):
    n = int(rng.integers(3, 17))
    body = rng.integers(0, mg.VOCAB - 2, n - 2)
    body = np.where(body >= mg.BOS, body + 2, body)
    return [mg.BOS] + [int(x) for x in body] + [mg.EOS]


def pick_pairs(S_pool, n):
    """Greedy: the highest-similarity (image, caption) pair among unused rows and columns, n times."""
    S = S_pool.copy()
    pairs = []
    for _ in range(n):
        i, j = np.unravel_index(int(np.argmax(S)), S.shape)
        pairs.append((int(i), int(j)))
        S[i, :] = -np.inf
        S[:, j] = -np.inf
    return pairs


def modules_of(sd, prefix, tower, cfg):
    hs = cfg["hidden_size"] // cfg["num_attention_heads"]
    out = []
    for l in range(n_layers(sd, prefix)):
        for h in range(heads_of(sd, prefix, l, hs)):
            out.append(({"tower": tower, "kind": "head", "layer": l, "index": h}, lambda s, l=l, h=h: remove_head(s, prefix, l, h, hs)))
        F_ = sd[f"{prefix}.encoder.layers.{l}.mlp.fc1.weight"].shape[0]
        for g in range(math.ceil(F_ / FFN_GROUP)):
            a, b = g * FFN_GROUP, min(F_, (g + 1) * FFN_GROUP)
            out.append(({"tower": tower, "kind": "ffn", "layer": l, "index": g}, lambda s, l=l, a=a, b=b: remove_ffn(s, prefix, l, a, b)))
        out.append(({"tower": tower, "kind": "layer", "layer": l, "index": 0}, lambda s, l=l: remove_layer(s, prefix, l)))
    return out


def score_all(model, pixels, captions):
    sd, cfg = model["sd"], model["config"]
    scale = math.exp(float(sd["logit_scale"]))
    img, txt = embed_images(model, pixels), embed_texts(model, captions)
    z0, loss0, margin = objective(sims(img, txt), scale)
    results = []
    for tower, prefix, ck in (("vision", "vision_model", "vision_config"), ("text", "text_model", "text_config")):
        for ref, remove in modules_of(sd, prefix, tower, cfg[ck]):
            small = {"config": cfg, "sd": remove(sd), "dtype": model["dtype"]}
            if tower == "vision":
                z, loss, m = objective(sims(embed_images(small, pixels), txt), scale)
            else:
                z, loss, m = objective(sims(img, embed_texts(small, captions)), scale)
            margin = min(margin, m)
            results.append({**ref, "mope": z0 - z, "loss_increase": loss - loss0, "z": z, "loss": loss})
    return {"z": z0, "loss": loss0}, results, margin


def main():
    ckpt = os.path.join(ROOT, "checkpoint")
    make_checkpoint(ckpt, np.random.default_rng(SEED))
    model = tc.load_checkpoint(ckpt, dtype=torch.float64)
    S_img = SHAPE["vision"]["image"]
    for attempt in range(50):
        rng = np.random.default_rng(SEED + 1 + attempt)
        pool_px = rng.normal(0, 1, (POOL, 3, S_img, S_img)).astype(np.float32)
        pool_caps = [random_caption(rng) for _ in range(POOL)]
        pool_S = sims(embed_images(model, pool_px), embed_texts(model, pool_caps))
        pairs = pick_pairs(pool_S, N_PAIRS)
        pixels = np.stack([pool_px[i] for i, _ in pairs])
        captions = [pool_caps[j] for _, j in pairs]
        base, results, margin = score_all(model, pixels, captions)
        print(f"attempt {attempt}: base Z {base['z']:.4f} loss {base['loss']:.4f}, min margin {margin:.2e}")
        if margin >= MARGIN:
            break
    else:
        raise SystemExit("no calibration set with a safe R@1 margin found")
    tc.write_safetensors(os.path.join(ROOT, "pixels.safetensors"), {"pixel_values": pixels})
    with open(os.path.join(ROOT, "calibration.json"), "w") as f:
        json.dump({"captions": captions, "pool_pairs": pairs, "seed": SEED + 1 + attempt}, f)
        f.write("\n")
    expected = {
        "generator": "tools/mope_reference.py (forward: tools/torch_clip.py, float64; modules removed by weight deletion)",
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "task": "retrieval", "n": N_PAIRS, "ffn_group_size": FFN_GROUP,
        "checkpoint": "checkpoint", "pixels": "pixels.safetensors", "captions": "calibration.json",
        "min_margin": margin, "base": base, "modules": results,
    }
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    nz = sum(1 for r in results if r["mope"] != 0)
    print(f"{len(results)} modules, {nz} with non-zero MoPE; written to {os.path.normpath(ROOT)}")


if __name__ == "__main__":
    main()
