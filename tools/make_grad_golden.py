# Makes the training golden files: a tiny teacher CLIP, a width- and depth-pruned student derived from it, fixed
# inputs, and PyTorch autograd results (tools/torch_clip_train.py). Dims: B pairs, T tokens, C width, E projection.
"""
Run with Debian's torch:  /usr/bin/python3 tools/make_grad_golden.py
Writes test/golden/train/{teacher,student}/{config.json, model.safetensors}, golden.safetensors and meta.json.

golden.safetensors (gradients and weights F32, losses F64; computed in float64):
  input_ids I32 [B,T], attention_mask I32 [B,T], pixel_values F32 [B,3,S,S]
  mask.{text,vision}.heads.{l} / .ffn.{l} / .layers        masks of case con (on the teacher checkpoint)
  con.loss [1], con.grad.<hf name>                          (1) L_con of the masked teacher-shaped model
  dist.loss.{total,con,kd,emb,hid} [1], dist.grad.<name>    (2) full distillation loss, student vs teacher
  term.{con,kd,emb,hid}.grad.<name>                         (2b) gradient of each unweighted term alone (weight 1)
  traj.loss [5], traj.lr [5], traj.gradnorm [5], traj.final.<name>   (3) AdamW steps on L_con of the teacher
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_clip as tc  # noqa: E402
import torch_clip_train as tt  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "golden", "train")
VOCAB, MAXPOS, BOS, EOS = 1000, 16, 499, 500
TEXT = dict(hidden=32, layers=3, heads=4, ffn=48, act="quick_gelu")
VISION = dict(hidden=32, layers=3, heads=4, ffn=40, act="gelu", image=16, patch=4)
E = 16
LENGTHS = [10, 6, 3, 8]
WEIGHTS = dict(w_con=0.5, w_kd=1.5, w_emb=2.0, w_hid=0.7, tau=2.0)
# student: kept original layers, kept heads / FFN neurons per kept layer
KEEP = {
    "text": dict(layers=[0, 2], heads=[[0, 2, 3], [1, 3]], ffn=[32, 24]),
    "vision": dict(layers=[1, 2], heads=[[0, 1, 2, 3], [0, 2, 3]], ffn=[40, 20]),
}
TRAJ = dict(steps=5, lr=1e-3, wd=0.1, betas=(0.9, 0.98), eps=1e-6, warmup=2, clip=1.0)


def config(mope=None):
    def tower(d, extra):
        return dict(hidden_size=d["hidden"], intermediate_size=d["ffn"], num_hidden_layers=d["layers"],
                    num_attention_heads=d["heads"], hidden_act=d["act"], layer_norm_eps=1e-5, projection_dim=E, **extra)
    c = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": E, "logit_scale_init_value": 2.6592,
         "text_config": tower(TEXT, dict(model_type="clip_text_model", vocab_size=VOCAB, max_position_embeddings=MAXPOS,
                                         bos_token_id=BOS, eos_token_id=EOS, pad_token_id=1)),
         "vision_config": tower(VISION, dict(model_type="clip_vision_model", num_channels=3, image_size=VISION["image"],
                                             patch_size=VISION["patch"]))}
    if mope:
        c["mope_clip"] = mope
        for t in ("text", "vision"):
            c[f"{t}_config"]["num_hidden_layers"] = len(mope[t]["layer_map"])
            c[f"{t}_config"]["intermediate_size"] = max(mope[t]["intermediate"])
    return c


def teacher_weights(rng):
    w = {}

    def lin(name, o, i, bias=True):
        w[name + ".weight"] = rng.normal(0, 1.0 / math.sqrt(i), (o, i))
        if bias:
            w[name + ".bias"] = rng.normal(0, 0.1, (o,))

    def ln(name, c):
        w[name + ".weight"] = 1 + rng.normal(0, 0.2, (c,))
        w[name + ".bias"] = rng.normal(0, 0.1, (c,))

    def layers(prefix, d):
        c = d["hidden"]
        for l in range(d["layers"]):
            p = f"{prefix}.encoder.layers.{l}."
            for q in ("q_proj", "k_proj", "v_proj", "out_proj"):
                lin(p + "self_attn." + q, c, c)
            ln(p + "layer_norm1", c)
            ln(p + "layer_norm2", c)
            lin(p + "mlp.fc1", d["ffn"], c)
            lin(p + "mlp.fc2", c, d["ffn"])

    C = TEXT["hidden"]
    w["text_model.embeddings.token_embedding.weight"] = rng.normal(0, 0.5, (VOCAB, C))
    w["text_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.2, (MAXPOS, C))
    layers("text_model", TEXT)
    ln("text_model.final_layer_norm", C)
    D, P = VISION["hidden"], VISION["patch"]
    G = (VISION["image"] // P) ** 2
    w["vision_model.embeddings.class_embedding"] = rng.normal(0, 0.5, (D,))
    w["vision_model.embeddings.patch_embedding.weight"] = rng.normal(0, 1.0 / math.sqrt(3 * P * P), (D, 3, P, P))
    w["vision_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.2, (G + 1, D))
    ln("vision_model.pre_layrnorm", D)
    layers("vision_model", VISION)
    ln("vision_model.post_layernorm", D)
    lin("visual_projection", E, D, bias=False)
    lin("text_projection", E, C, bias=False)
    w["logit_scale"] = np.array(math.log(1 / 0.07))
    return {k: a.astype(np.float32) for k, a in w.items()}


def student_weights(tw, rng):
    """Copy of kept layers / heads / neurons of the teacher, plus noise so the student differs."""
    w = {k: v for k, v in tw.items() if ".encoder.layers." not in k}
    mope = {}
    for tower, d in (("text", TEXT), ("vision", VISION)):
        keep = KEEP[tower]
        hs = d["hidden"] // d["heads"]
        prefix = f"{tower}_model.encoder.layers."
        ffn_kept = []
        for j, l in enumerate(keep["layers"]):
            src, dst = f"{prefix}{l}.", f"{prefix}{j}."
            rows = np.concatenate([np.arange(h * hs, (h + 1) * hs) for h in keep["heads"][j]])
            for q in ("q_proj", "k_proj", "v_proj"):
                w[dst + f"self_attn.{q}.weight"] = tw[src + f"self_attn.{q}.weight"][rows]
                w[dst + f"self_attn.{q}.bias"] = tw[src + f"self_attn.{q}.bias"][rows]
            w[dst + "self_attn.out_proj.weight"] = tw[src + "self_attn.out_proj.weight"][:, rows]
            w[dst + "self_attn.out_proj.bias"] = tw[src + "self_attn.out_proj.bias"]
            neurons = np.sort(rng.choice(d["ffn"], keep["ffn"][j], replace=False))
            ffn_kept.append(int(len(neurons)))
            w[dst + "mlp.fc1.weight"] = tw[src + "mlp.fc1.weight"][neurons]
            w[dst + "mlp.fc1.bias"] = tw[src + "mlp.fc1.bias"][neurons]
            w[dst + "mlp.fc2.weight"] = tw[src + "mlp.fc2.weight"][:, neurons]
            w[dst + "mlp.fc2.bias"] = tw[src + "mlp.fc2.bias"]
            for n in ("layer_norm1", "layer_norm2"):
                for s in ("weight", "bias"):
                    w[dst + f"{n}.{s}"] = tw[src + f"{n}.{s}"]
        mope[tower] = {"heads": [len(h) for h in keep["heads"]], "intermediate": ffn_kept, "layer_map": keep["layers"]}
    out = {}
    for k, v in w.items():
        out[k] = (v + rng.normal(0, 0.05, v.shape)).astype(np.float32) if k != "logit_scale" else np.array(2.3, dtype=np.float32)
    return out, mope


def inputs(rng):
    T = max(LENGTHS)
    ids = np.full((len(LENGTHS), T), EOS, dtype=np.int32)
    mask = np.zeros((len(LENGTHS), T), dtype=np.int32)
    for r, n in enumerate(LENGTHS):
        body = rng.integers(0, VOCAB - 2, n - 2)
        body = np.where(body >= BOS, body + 2, body)
        ids[r, :n] = np.concatenate([[BOS], body, [EOS]])
        mask[r, :n] = 1
    S = VISION["image"]
    px = rng.normal(0, 1, (len(LENGTHS), 3, S, S)).astype(np.float32)
    return ids, mask, px


def masks_for(rng):
    out = {}
    for tower, d in (("text", TEXT), ("vision", VISION)):
        heads = [np.ones(d["heads"], dtype=np.float32) for _ in range(d["layers"])]
        heads[0][1] = 0.0
        heads[0][2] = 0.5
        heads[2][3] = 0.0
        ffn = []
        for _ in range(d["layers"]):
            f = (rng.random(d["ffn"]) > 0.25).astype(np.float32)
            f[:2] = [0.5, 0.0]
            ffn.append(f)
        layers = np.ones(d["layers"], dtype=np.float32)
        layers[1] = 0.0 if tower == "vision" else 0.5
        out[tower] = {"heads": heads, "ffn": ffn, "layers": layers}
    return out


def write_folder(name, cfg, weights):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    tc.write_safetensors(os.path.join(folder, "model.safetensors"), weights)
    return folder


def f32(t):
    return t.detach().numpy().astype(np.float32)


def main():
    rng = np.random.default_rng(20240511)
    torch.manual_seed(0)
    tw = teacher_weights(rng)
    sw, mope = student_weights(tw, rng)
    tdir = write_folder("teacher", config(), tw)
    sdir = write_folder("student", config(mope), sw)
    ids, mask, px = inputs(rng)
    masks = masks_for(rng)
    ids64 = torch.from_numpy(ids.astype(np.int64))
    mask_t = torch.from_numpy(mask)
    px_t = torch.from_numpy(px).double()
    g = {"input_ids": ids, "attention_mask": mask, "pixel_values": px}
    for tower in ("text", "vision"):
        for l, h in enumerate(masks[tower]["heads"]):
            g[f"mask.{tower}.heads.{l}"] = h
        for l, f_ in enumerate(masks[tower]["ffn"]):
            g[f"mask.{tower}.ffn.{l}"] = f_
        g[f"mask.{tower}.layers"] = masks[tower]["layers"]

    # (1) contrastive loss of the masked teacher-shaped model
    m = tt.trainable(tc.load_checkpoint(tdir, torch.float64))
    out = tt.clip_losses(m, None, ids64, mask_t, px_t, dict(w_con=1.0), masks=masks)
    g["con.loss"] = np.array([float(out["con"])])
    for n, gr in tt.grads_by_name(m, out["total"]).items():
        g["con.grad." + n] = f32(gr)

    # (2) full distillation loss of the student against the teacher
    teacher = tc.load_checkpoint(tdir, torch.float64)
    st = tt.trainable(tc.load_checkpoint(sdir, torch.float64))
    out = tt.clip_losses(st, teacher, ids64, mask_t, px_t, WEIGHTS)
    for k in ("total", "con", "kd", "emb", "hid"):
        g[f"dist.loss.{k}"] = np.array([float(out[k])])
    for n, gr in tt.grads_by_name(st, out["total"]).items():
        g["dist.grad." + n] = f32(gr)
    for term in ("con", "kd", "emb", "hid"):
        out = tt.clip_losses(st, teacher, ids64, mask_t, px_t, {**WEIGHTS, "w_con": 0.0, "w_kd": 0.0, "w_emb": 0.0, "w_hid": 0.0, "w_" + term: 1.0})
        for n, gr in tt.grads_by_name(st, out["total"]).items():
            g[f"term.{term}.grad." + n] = f32(gr)

    # (3) AdamW trajectory on L_con of the (unmasked) teacher checkpoint
    m = tt.trainable(tc.load_checkpoint(tdir, torch.float64))
    losses, lrs, norms = tt.adamw_trajectory(
        m, lambda mm: tt.clip_losses(mm, None, ids64, mask_t, px_t, dict(w_con=1.0))["total"],
        TRAJ["steps"], TRAJ["lr"], TRAJ["wd"], TRAJ["betas"], TRAJ["eps"], TRAJ["warmup"], TRAJ["clip"])
    g["traj.loss"], g["traj.lr"], g["traj.gradnorm"] = np.array(losses), np.array(lrs), np.array(norms)
    for n, p in m["sd"].items():
        g["traj.final." + n] = f32(p)

    tc.write_safetensors(os.path.join(ROOT, "golden.safetensors"), g)
    meta = {
        "generator": "tools/make_grad_golden.py (autograd reference: tools/torch_clip_train.py on tools/torch_clip.py)",
        "torch_version": torch.__version__, "numpy_version": np.__version__, "seed": 20240511,
        "compute_dtype": "float64", "vocab_size": VOCAB, "bos_token_id": BOS, "eos_token_id": EOS,
        "text_lengths": LENGTHS, "text": TEXT, "vision": VISION, "projection_dim": E,
        "student_keep": KEEP, "distill_weights": WEIGHTS,
        "trajectory": {**TRAJ, "betas": list(TRAJ["betas"]), "schedule": "linear warmup lr*s/warmup, then cosine at progress (s-1-warmup)/(total-warmup) (1-based s)",
                       "loss": "L_con of the teacher checkpoint, same batch every step",
                       "decay_groups": "no weight decay on biases, LayerNorm, token/position/class embeddings, logit_scale",
                       "clip": "clip_grad_norm_ over all parameters; logit_scale clamped to <= ln 100 after each step"},
        "losses": {"con_masked": float(g["con.loss"][0]), "dist": {k: float(g[f"dist.loss.{k}"][0]) for k in ("total", "con", "kd", "emb", "hid")},
                   "traj": losses, "traj_gradnorm": norms},
    }
    with open(os.path.join(ROOT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("written", ROOT, sorted(os.listdir(ROOT)), "losses", meta["losses"])


if __name__ == "__main__":
    main()
