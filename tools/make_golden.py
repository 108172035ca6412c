# Makes the model golden files: two tiny random HF CLIP checkpoints + fixed inputs + outputs of tools/torch_clip.py.
# Dims: Nt texts × T tokens (padded), Ni images [ch,S,S], C width, E projection dim, L layers per tower.
"""
Run with Debian's torch:  /usr/bin/python3 tools/make_golden.py
Writes test/golden/model/<name>/{config.json, model.safetensors, golden.safetensors} and test/golden/model/meta.json.

Vocabulary decision: a 49408-row token table is 6.3 MB at hidden 32 (F32), too big to commit, so both
checkpoints use vocab_size 1000 with bos_token_id 499 and eos_token_id 500. EOS is deliberately not the
largest id and the inputs contain ids above it, so first-EOS pooling and argmax pooling disagree and the
golden files pin down first-EOS pooling. Text batches are right-padded with EOS plus an attention mask.

golden.safetensors holds, for each of the precisions f64 and f32 (torch compute dtype):
  input_ids I32 [Nt,T], attention_mask I32 [Nt,T], pixel_values F32 [Ni,ch,S,S]
  {p}.text_embeds [Nt,E], {p}.image_embeds [Ni,E] (unnormalised, = get_*_features),
  {p}.logits_per_text [Nt,Ni], {p}.text_hidden_last [Nt,T,C] (raw encoder output = residual stream after the
  last layer), {p}.text_last_hidden_state (after final LN), {p}.vision_hidden_last [Ni,G+1,C],
  {p}.text_hidden0 / {p}.vision_hidden0 (the stream entering layer 0),
  and the masked variant {p}.masked.text_embeds / .image_embeds / .text_hidden_last / .vision_hidden_last
  computed with the masks stored as mask.{text,vision}.heads.{l} / .ffn.{l} / .layers (F32).
f64 tensors are stored F64, f32 ones F32.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_clip as tc  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "golden", "model")

SHAPES = {
    "A": dict(act="quick_gelu", wdtype=np.float32,
              text=dict(hidden=32, layers=2, heads=4, ffn=64),
              vision=dict(hidden=48, layers=2, heads=4, ffn=96, image=32, patch=8),
              proj=24),
    "B": dict(act="gelu", wdtype=np.float16,
              text=dict(hidden=48, layers=3, heads=6, ffn=80),
              vision=dict(hidden=64, layers=3, heads=2, ffn=112, image=28, patch=7),
              proj=16),
}
VOCAB, MAXPOS, BOS, EOS = 1000, 77, 499, 500
TEXT_LENGTHS = [5, 12, 2, 77]
N_IMAGES = 3


def config_for(s):
    t, v = s["text"], s["vision"]
    dt = "float16" if s["wdtype"] == np.float16 else "float32"
    return {
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": s["proj"],
        "logit_scale_init_value": 2.6592, "initializer_factor": 1.0, "torch_dtype": dt,
        "text_config": {
            "model_type": "clip_text_model", "vocab_size": VOCAB, "hidden_size": t["hidden"],
            "intermediate_size": t["ffn"], "num_hidden_layers": t["layers"], "num_attention_heads": t["heads"],
            "max_position_embeddings": MAXPOS, "hidden_act": s["act"], "layer_norm_eps": 1e-5,
            "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": 1, "projection_dim": s["proj"],
        },
        "vision_config": {
            "model_type": "clip_vision_model", "hidden_size": v["hidden"], "intermediate_size": v["ffn"],
            "num_hidden_layers": v["layers"], "num_attention_heads": v["heads"], "num_channels": 3,
            "image_size": v["image"], "patch_size": v["patch"], "hidden_act": s["act"], "layer_norm_eps": 1e-5,
            "projection_dim": s["proj"],
        },
    }


def random_weights(s, rng):
    """Weights large enough that every module visibly changes the outputs."""
    t, v, E = s["text"], s["vision"], s["proj"]
    w = {}

    def lin(name, o, i, bias=True):
        w[name + ".weight"] = rng.normal(0, 1.0 / math.sqrt(i), (o, i))
        if bias:
            w[name + ".bias"] = rng.normal(0, 0.1, (o,))

    def ln(name, c):
        w[name + ".weight"] = 1 + rng.normal(0, 0.2, (c,))
        w[name + ".bias"] = rng.normal(0, 0.1, (c,))

    def layers(prefix, c, n, f):
        for l in range(n):
            p = f"{prefix}.encoder.layers.{l}."
            for q in ("q_proj", "k_proj", "v_proj", "out_proj"):
                lin(p + "self_attn." + q, c, c)
            ln(p + "layer_norm1", c)
            ln(p + "layer_norm2", c)
            lin(p + "mlp.fc1", f, c)
            lin(p + "mlp.fc2", c, f)

    C = t["hidden"]
    w["text_model.embeddings.token_embedding.weight"] = rng.normal(0, 0.5, (VOCAB, C))
    w["text_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.2, (MAXPOS, C))
    layers("text_model", C, t["layers"], t["ffn"])
    ln("text_model.final_layer_norm", C)
    D, P = v["hidden"], v["patch"]
    G = (v["image"] // P) ** 2
    w["vision_model.embeddings.class_embedding"] = rng.normal(0, 0.5, (D,))
    w["vision_model.embeddings.patch_embedding.weight"] = rng.normal(0, 1.0 / math.sqrt(3 * P * P), (D, 3, P, P))
    w["vision_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.2, (G + 1, D))
    ln("vision_model.pre_layrnorm", D)
    layers("vision_model", D, v["layers"], v["ffn"])
    ln("vision_model.post_layernorm", D)
    lin("visual_projection", E, D, bias=False)
    lin("text_projection", E, C, bias=False)
    w["logit_scale"] = np.array(math.log(1 / 0.07))
    return {k: a.astype(s["wdtype"]) for k, a in w.items()}


def make_inputs(s, rng):
    T = max(TEXT_LENGTHS)
    ids = np.full((len(TEXT_LENGTHS), T), EOS, dtype=np.int32)
    mask = np.zeros((len(TEXT_LENGTHS), T), dtype=np.int32)
    for r, n in enumerate(TEXT_LENGTHS):
        body = rng.integers(0, VOCAB - 2, n - 2)
        body = np.where(body >= BOS, body + 2, body)  # never BOS/EOS inside, ids above EOS do occur
        ids[r, :n] = np.concatenate([[BOS], body, [EOS]])
        mask[r, :n] = 1
    S = s["vision"]["image"]
    px = rng.normal(0, 1, (N_IMAGES, 3, S, S)).astype(np.float32)
    return ids, mask, px


def make_masks(s, rng):
    out = {}
    for tower in ("text", "vision"):
        d = s[tower]
        heads = []
        for l in range(d["layers"]):
            h = np.ones(d["heads"], dtype=np.float32)
            if l == 0:
                h[1] = 0.0
                if d["heads"] > 2:
                    h[-1] = 0.5
            if l == 1:
                h[0] = 0.0
            heads.append(h)
        ffn = []
        for l in range(d["layers"]):
            f = (rng.random(d["ffn"]) > 0.3).astype(np.float32)
            f[:3] = [0.25, 1.0, 0.0]
            ffn.append(f)
        layers = np.ones(d["layers"], dtype=np.float32)
        layers[-1] = 0.0
        if d["layers"] > 2:
            layers[1] = 0.5
        out[tower] = {"heads": heads, "ffn": ffn, "layers": layers}
    return out


def main():
    os.makedirs(ROOT, exist_ok=True)
    rng = np.random.default_rng(20240307)
    for name, s in SHAPES.items():
        folder = os.path.join(ROOT, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config_for(s), f, indent=2)
            f.write("\n")
        tc.write_safetensors(os.path.join(folder, "model.safetensors"), random_weights(s, rng))
        ids, mask, px = make_inputs(s, rng)
        masks = make_masks(s, rng)
        g = {"input_ids": ids, "attention_mask": mask, "pixel_values": px}
        for tower in ("text", "vision"):
            m = masks[tower]
            for l, h in enumerate(m["heads"]):
                g[f"mask.{tower}.heads.{l}"] = h
            for l, f_ in enumerate(m["ffn"]):
                g[f"mask.{tower}.ffn.{l}"] = f_
            g[f"mask.{tower}.layers"] = m["layers"]
        for p, dt, npdt in (("f64", torch.float64, np.float64), ("f32", torch.float32, np.float32)):
            model = tc.load_checkpoint(folder, dtype=dt)
            with torch.no_grad():
                t = tc.text_forward(model, ids.astype(np.int64), mask)
                v = tc.vision_forward(model, px)
                lg = tc.clip_logits(model, t["embeds"], v["embeds"])
                tm = tc.text_forward(model, ids.astype(np.int64), mask, masks=masks["text"])
                vm = tc.vision_forward(model, px, masks=masks["vision"])
            cv = lambda x: x.numpy().astype(npdt)  # noqa: E731
            g.update({
                f"{p}.text_embeds": cv(t["embeds"]), f"{p}.image_embeds": cv(v["embeds"]),
                f"{p}.logits_per_text": cv(lg),
                f"{p}.text_hidden0": cv(t["hidden"][0]), f"{p}.text_hidden_last": cv(t["hidden"][-1]),
                f"{p}.text_last_hidden_state": cv(t["last_hidden_state"]),
                f"{p}.vision_hidden0": cv(v["hidden"][0]), f"{p}.vision_hidden_last": cv(v["hidden"][-1]),
                f"{p}.masked.text_embeds": cv(tm["embeds"]), f"{p}.masked.image_embeds": cv(vm["embeds"]),
                f"{p}.masked.text_hidden_last": cv(tm["hidden"][-1]), f"{p}.masked.vision_hidden_last": cv(vm["hidden"][-1]),
            })
        tc.write_safetensors(os.path.join(folder, "golden.safetensors"), g)
        print(name, "written:", sorted(os.listdir(folder)))
    meta = {
        "generator": "tools/make_golden.py (reference forward: tools/torch_clip.py)",
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "seed": 20240307, "vocab_size": VOCAB, "bos_token_id": BOS, "eos_token_id": EOS,
        "text_lengths": TEXT_LENGTHS, "n_images": N_IMAGES,
        "checkpoints": {k: {"act": s["act"], "weight_dtype": np.dtype(s["wdtype"]).name, "text": s["text"],
                            "vision": s["vision"], "projection_dim": s["proj"]} for k, s in SHAPES.items()},
        "notes": "vocab_size 1000 keeps each checkpoint well under 1 MB; EOS (500) is not the largest id, so "
                 "first-EOS pooling is what is tested. Masks: heads/ffn scale head outputs / activations, layers scale "
                 "both residual branches (0 skips the layer).",
    }
    with open(os.path.join(ROOT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
