# Independent PyTorch reference of the HF CLIPModel forward (nn.functional only), read from a checkpoint folder.
# Dims: B batch, T tokens, C width, NH heads, HS head size, F FFN width, E projection dim. Masks: heads [L][NH_l],
# ffn [L][F_l], layers [L] scale head outputs / activations / whole residual branches (our extension; HF has none).
"""
Written from Hugging Face CLIP's forward semantics, not from our TypeScript.
Per-layer widths are read from the tensor shapes (q_proj rows / head_dim, fc1 rows), so a structurally
pruned checkpoint works too. Usage as a library:

    m = load_checkpoint(folder, dtype=torch.float64)
    t = text_forward(m, ids, attention_mask, masks=None)      # dict: embeds, hidden (list), last_hidden_state
    v = vision_forward(m, pixels, masks=None)                  # dict: embeds, hidden (list)
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """name -> numpy array (BF16 widened to float32 by hand)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        dt = info["dtype"]
        if dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_NP[dt]).newbyteorder("<"))
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    """tensors: name -> numpy array (float64/float32/float16/int32). Writer rules of the safetensors format."""
    codes = {np.dtype(np.float64): ("F64", 8), np.dtype(np.float32): ("F32", 4), np.dtype(np.float16): ("F16", 2),
             np.dtype(np.int32): ("I32", 4), np.dtype(np.int64): ("I64", 8)}
    items = sorted(tensors.items(), key=lambda kv: (-codes[kv[1].dtype][1], kv[0]))
    header, blobs, off = {}, [], 0
    for name, a in items:
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[a.dtype][0], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_checkpoint(folder, dtype=torch.float64):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    sd = {k: torch.from_numpy(v.astype(np.float64)).to(dtype) for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()
          if not k.endswith("position_ids")}
    return {"config": cfg, "sd": sd, "dtype": dtype}


def _act(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return lambda x: F.gelu(x)  # exact erf form
    if name == "gelu_new":
        return lambda x: F.gelu(x, approximate="tanh")
    raise ValueError("unknown activation " + name)


def _layers(sd, prefix):
    n = 0
    while f"{prefix}.encoder.layers.{n}.self_attn.q_proj.weight" in sd:
        n += 1
    return n


def encoder(sd, prefix, tcfg, x, add_mask, masks):
    """x [B,T,C]; add_mask [B,1,T,T] additive (or None). Returns the list of L+1 hidden states."""
    act = _act(tcfg["hidden_act"])
    eps = tcfg.get("layer_norm_eps", 1e-5)
    C = tcfg["hidden_size"]
    hs = C // tcfg["num_attention_heads"]
    hidden = [x]
    L = _layers(sd, prefix)
    for l in range(L):
        p = f"{prefix}.encoder.layers.{l}."
        s = 1.0 if masks is None or masks.get("layers") is None else float(masks["layers"][l])
        B, T, _ = x.shape
        if s != 0.0:
            # attention branch
            h = F.layer_norm(x, (C,), sd[p + "layer_norm1.weight"], sd[p + "layer_norm1.bias"], eps)
            q = F.linear(h, sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.q_proj.bias"])
            k = F.linear(h, sd[p + "self_attn.k_proj.weight"], sd[p + "self_attn.k_proj.bias"])
            v = F.linear(h, sd[p + "self_attn.v_proj.weight"], sd[p + "self_attn.v_proj.bias"])
            nh = q.shape[-1] // hs
            q = q.view(B, T, nh, hs).transpose(1, 2)
            k = k.view(B, T, nh, hs).transpose(1, 2)
            v = v.view(B, T, nh, hs).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) * (hs ** -0.5)
            if add_mask is not None:
                scores = scores + add_mask
            probs = torch.softmax(scores, dim=-1)
            o = torch.matmul(probs, v)  # [B,NH,T,HS]
            if masks is not None and masks.get("heads") is not None:
                hm = torch.tensor(np.asarray(masks["heads"][l], dtype=np.float64), dtype=x.dtype)
                o = o * hm.view(1, nh, 1, 1)
            o = o.transpose(1, 2).reshape(B, T, nh * hs)
            a = F.linear(o, sd[p + "self_attn.out_proj.weight"], sd[p + "self_attn.out_proj.bias"])
            x = x + s * a
            # MLP branch
            h = F.layer_norm(x, (C,), sd[p + "layer_norm2.weight"], sd[p + "layer_norm2.bias"], eps)
            f = act(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
            if masks is not None and masks.get("ffn") is not None:
                f = f * torch.tensor(np.asarray(masks["ffn"][l], dtype=np.float64), dtype=x.dtype)
            m = F.linear(f, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
            x = x + s * m
        hidden.append(x)
    return hidden


def text_forward(model, ids, attention_mask=None, masks=None):
    """ids int64 [B,T]; attention_mask [B,T] 1/0 or None."""
    sd, cfg = model["sd"], model["config"]
    tc = cfg["text_config"]
    ids = torch.as_tensor(ids, dtype=torch.long)
    B, T = ids.shape
    assert T <= tc.get("max_position_embeddings", 77)
    x = sd["text_model.embeddings.token_embedding.weight"][ids] + sd["text_model.embeddings.position_embedding.weight"][:T][None]
    neg = torch.finfo(x.dtype).min
    allowed = torch.ones(B, 1, T, T, dtype=torch.bool).tril()
    if attention_mask is not None:
        allowed = allowed & (torch.as_tensor(attention_mask) != 0).view(B, 1, 1, T)
    add_mask = torch.zeros(B, 1, T, T, dtype=x.dtype).masked_fill(~allowed, neg)
    hidden = encoder(sd, "text_model", tc, x, add_mask, masks)
    C = tc["hidden_size"]
    last = F.layer_norm(hidden[-1], (C,), sd["text_model.final_layer_norm.weight"], sd["text_model.final_layer_norm.bias"],
                        tc.get("layer_norm_eps", 1e-5))
    eos = tc.get("eos_token_id", 49407)
    if eos == 2:
        pos = ids.to(torch.int32).argmax(dim=-1)
    else:
        pos = (ids == eos).int().argmax(dim=-1)
    pooled = last[torch.arange(B), pos]
    embeds = F.linear(pooled, sd["text_projection.weight"])
    return {"embeds": embeds, "hidden": hidden, "last_hidden_state": last, "pool_index": pos}


def vision_forward(model, pixels, masks=None):
    """pixels float [B,ch,S,S]."""
    sd, cfg = model["sd"], model["config"]
    vc = cfg["vision_config"]
    px = torch.as_tensor(pixels).to(model["dtype"])
    B = px.shape[0]
    P = vc["patch_size"]
    pe = F.conv2d(px, sd["vision_model.embeddings.patch_embedding.weight"], stride=P)  # [B,C,g,g]
    pe = pe.flatten(2).transpose(1, 2)
    C = vc["hidden_size"]
    cls = sd["vision_model.embeddings.class_embedding"].view(1, 1, C).expand(B, 1, C)
    x = torch.cat([cls, pe], dim=1) + sd["vision_model.embeddings.position_embedding.weight"][None]
    eps = vc.get("layer_norm_eps", 1e-5)
    x = F.layer_norm(x, (C,), sd["vision_model.pre_layrnorm.weight"], sd["vision_model.pre_layrnorm.bias"], eps)
    hidden = encoder(sd, "vision_model", vc, x, None, masks)
    pooled = F.layer_norm(hidden[-1][:, 0, :], (C,), sd["vision_model.post_layernorm.weight"], sd["vision_model.post_layernorm.bias"], eps)
    embeds = F.linear(pooled, sd["visual_projection.weight"])
    return {"embeds": embeds, "hidden": hidden}


def clip_logits(model, text_embeds, image_embeds):
    """logits_per_text [Bt,Bi] from unnormalised embeds."""
    t = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
    i = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
    return t @ i.T * model["sd"]["logit_scale"].exp()


if __name__ == "__main__":
    import sys

    m = load_checkpoint(sys.argv[1])
    ids = torch.tensor([[m["config"]["text_config"].get("bos_token_id", 49406), m["config"]["text_config"].get("eos_token_id", 49407)]])
    print("text embeds", text_forward(m, ids)["embeds"])
