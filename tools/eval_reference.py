#!/usr/bin/env python3
"""Independent reference for the eval metrics (numpy): reads the embeddings test/eval.test.ts dumps to
test/golden/eval/*_embeddings.json and writes test/golden/eval/reference.json.

Zero-shot follows OpenAI's zeroshot_classifier (normalise each template embedding, mean, renormalise),
logits = normalised image embeds @ class weights; acc@K = label among the top K; mean per-class recall =
sklearn's balanced accuracy (mean over classes present in the labels of top-1 recall).
Retrieval follows CLIP_benchmark: image_retrieval_recall@K over captions (its image in the top K images),
text_retrieval_recall@K over images (any of its captions in the top K captions).
Ranking: stable sort by descending score, so ties go to the lower index (np.argsort(-s, kind="stable")),
the convention mope-clip documents; K larger than the candidate count keeps every candidate.
Computed in float64 from the dumped numbers. Usage: python3 tools/eval_reference.py [golden_dir]
"""
import json
import os
import sys

import numpy as np


def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def topk_hit(scores, positives, k):
    """scores [Q, C]; positives: list of index arrays per query -> hit vector [Q]."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.array([np.isin(order[q], positives[q]).any() for q in range(scores.shape[0])])


def zeroshot(g):
    E, NC, T = g["E"], g["classes"], g["templates"]
    tpl = l2n(np.array(g["template_embeds"], dtype=np.float64).reshape(NC * T, E)).reshape(NC, T, E)
    W = l2n(tpl.mean(axis=1))
    img = l2n(np.array(g["image_embeds"], dtype=np.float64).reshape(-1, E))
    labels = np.array(g["labels"])
    logits = img @ W.T
    pos = [np.array([y]) for y in labels]
    acc1 = topk_hit(logits, pos, 1).mean()
    acc5 = topk_hit(logits, pos, 5).mean()
    top1 = np.argsort(-logits, axis=1, kind="stable")[:, 0]
    recalls = [np.mean(top1[labels == c] == c) for c in range(NC) if np.any(labels == c)]
    return {"acc1": float(acc1), "acc5": float(acc5), "mean_per_class_recall": float(np.mean(recalls)),
            "n": {"images": int(len(labels)), "classes": int(NC)}}


def retrieval(g):
    E = g["E"]
    txt = l2n(np.array(g["text_embeds"], dtype=np.float64).reshape(-1, E))
    img = l2n(np.array(g["image_embeds"], dtype=np.float64).reshape(-1, E))
    cap_img = np.array(g["caption_image"])
    S = txt @ img.T  # [NT, NI]
    NT, NI = S.shape
    out = {}
    for k in (1, 5, 10):
        out[f"image_retrieval_recall@{k}"] = float(topk_hit(S, [np.array([i]) for i in cap_img], k).mean())
    for k in (1, 5, 10):
        out[f"text_retrieval_recall@{k}"] = float(topk_hit(S.T, [np.nonzero(cap_img == i)[0] for i in range(NI)], k).mean())
    out["mean_recall@1"] = (out["image_retrieval_recall@1"] + out["text_retrieval_recall@1"]) / 2
    out["rsum"] = sum(out[f"{d}_retrieval_recall@{k}"] for d in ("image", "text") for k in (1, 5, 10))
    out["n"] = {"images": int(NI), "captions": int(NT)}
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    gold = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "test", "golden", "eval")
    with open(os.path.join(gold, "zeroshot_embeddings.json")) as f:
        zs = zeroshot(json.load(f))
    with open(os.path.join(gold, "retrieval_embeddings.json")) as f:
        rt = retrieval(json.load(f))
    ref = {"generator": "tools/eval_reference.py", "numpy": np.__version__, "zeroshot": zs, "retrieval": rt}
    with open(os.path.join(gold, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    print(json.dumps(ref, indent=2))


if __name__ == "__main__":
    main()
