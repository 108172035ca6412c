# Golden-file generator for image preprocessing: HF CLIPImageProcessor's pipeline computed with PIL + numpy (run with Debian's /usr/bin/python3).
#
#   /usr/bin/python3 tools/pil_reference.py --make-images   # (re)create the synthetic inputs in test/golden/images/
#   /usr/bin/python3 tools/pil_reference.py                 # write test/golden/preprocess/*
#
# The pipeline is transformers' CLIPImageProcessor written out with PIL and numpy (transformers itself
# is not needed): convert('RGB') -> PIL resize (bicubic, reducing_gap=None) of the uint8 array to the
# shortest edge, long side int(size*long/short) -> center crop with floor offsets, zero padding
# centred with a ceil split when the image is smaller -> float64 rescale cast to float32 ->
# (x - mean) / std in float32 -> channels first.
#
# Outputs (little-endian, no headers), described by manifest.json:
#   <case>.resized.u8.bin   the resized uint8 image, H x W x 3 (before cropping)
#   <case>.pixels.f32.bin   the final float32 tensor, 3 x cropH x cropW
#   <image>.rgb.u8.bin      PIL's convert('RGB') of the decoded file, H x W x 3
# A file over SIZE_LIMIT bytes is not written; its sha256 in the manifest is checked instead.

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "test", "golden", "images")
OUT = os.path.join(ROOT, "test", "golden", "preprocess")
SIZE_LIMIT = 160_000
# Cases written in full whatever their size, so one full-size 224 case has arrays to diff.
ALWAYS_FULL = {("rocket.jpg", "s224")}

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_config(size, crop=None, resample=3):
    crop = size if crop is None else crop
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": size if isinstance(size, dict) else {"shortest_edge": size},
        "resample": resample,
        "do_center_crop": True,
        "crop_size": crop if isinstance(crop, dict) else {"height": crop, "width": crop},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": OPENAI_MEAN,
        "image_std": OPENAI_STD,
    }


# name -> config; every image goes through "s224" and "s50", the rest on chosen images.
CONFIGS = {
    "s224": clip_config(224),
    "s50": clip_config(50),
    "s61_crop48x40": clip_config(61, {"height": 48, "width": 40}),
    "s32_crop40_pad": clip_config(32, 40),
    "s50_bilinear": clip_config(50, resample=2),
    "hw40x56": clip_config({"height": 40, "width": 56}, {"height": 36, "width": 50}),
}
EXTRA = {
    "s61_crop48x40": ["chelsea.png", "odd_37x301.png", "rocket.jpg"],
    "s32_crop40_pad": ["odd_37x301.png", "grey.png"],
    "s50_bilinear": ["coffee.png", "odd_37x301.png"],
    "hw40x56": ["chelsea.png", "rgba.png"],
}


# Plain PIL resizes with a fractional source box (resizeU8's `box` option), on the decoded RGB image.
BOX_CASES = [
    {"image": "chelsea.png", "size": [77, 61], "box": [10.5, 20.25, 300.75, 250.0], "resample": 3},
    {"image": "odd_37x301.png", "size": [50, 90], "box": [3.0, 95.5, 30.0, 160.0], "resample": 3},
    {"image": "coffee.png", "size": [41, 33], "box": [0.0, 0.0, 600.0, 400.0], "resample": 2},
]


def make_images():
    rng = np.random.default_rng(20240307)

    def smooth_noise(h, w, c):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 7) % 256, (xx * 3 + yy) % 256], -1)[..., :c]
        noise = rng.integers(-60, 61, size=(h, w, c))
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    # Odd portrait size, upscaled by the 224 case and downscaled by the 50 case; hard edges included.
    a = smooth_noise(301, 37, 3)
    a[100:140, :, :] = 255
    a[140:150, :, :] = 0
    Image.fromarray(a, "RGB").save(os.path.join(IMAGES, "odd_37x301.png"))
    Image.fromarray(smooth_noise(48, 64, 1)[..., 0], "L").save(os.path.join(IMAGES, "grey.png"))
    la = smooth_noise(40, 52, 2)
    Image.fromarray(la, "LA").save(os.path.join(IMAGES, "grey_alpha.png"))
    rgba = smooth_noise(45, 70, 4)
    rgba[..., 3] = rng.integers(0, 256, size=(45, 70))  # alpha must be dropped, not composited
    Image.fromarray(rgba, "RGBA").save(os.path.join(IMAGES, "rgba.png"))
    pal = Image.fromarray(smooth_noise(60, 80, 3), "RGB").quantize(colors=64, method=Image.MEDIANCUT, dither=Image.NONE)
    pal.save(os.path.join(IMAGES, "palette.gif"))
    pal2 = Image.fromarray(smooth_noise(33, 47, 3), "RGB").quantize(colors=16, method=Image.MEDIANCUT, dither=Image.NONE)
    pal2.save(os.path.join(IMAGES, "palette_trns.png"), transparency=3)
    frames = [Image.fromarray(smooth_noise(30, 41, 3), "RGB").quantize(colors=32, dither=Image.NONE) for _ in range(3)]
    frames[0].save(os.path.join(IMAGES, "anim.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(smooth_noise(70, 90, 3), "RGB").save(os.path.join(IMAGES, "lossy.webp"), quality=80)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90 CW": must be ignored, as PIL.Image.open and HF ignore it
    Image.fromarray(smooth_noise(50, 80, 3), "RGB").save(os.path.join(IMAGES, "exif_rot6.jpg"), quality=90, exif=exif)


def hf_resize_size(h, w, size):
    if "shortest_edge" in size:
        s = size["shortest_edge"]
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = s, int(s * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)
    return size["height"], size["width"]


def hf_center_crop(img, ch, cw):
    oh, ow = img.shape[:2]
    top = (oh - ch) // 2
    left = (ow - cw) // 2
    if top >= 0 and left >= 0 and top + ch <= oh and left + cw <= ow:
        return img[top:top + ch, left:left + cw]
    nh, nw = max(ch, oh), max(cw, ow)
    padded = np.zeros((nh, nw) + img.shape[2:], dtype=img.dtype)
    tp = math.ceil((nh - oh) / 2)
    lp = math.ceil((nw - ow) / 2)
    padded[tp:tp + oh, lp:lp + ow] = img
    top += tp
    left += lp
    return padded[max(0, top):min(nh, top + ch), max(0, left):min(nw, left + cw)]


def hf_pipeline(pil_img, cfg):
    img = pil_img if pil_img.mode == "RGB" else pil_img.convert("RGB")
    arr = np.array(img)
    h, w = arr.shape[:2]
    oh, ow = hf_resize_size(h, w, cfg["size"])
    resized = np.array(Image.fromarray(arr).resize((ow, oh), resample=cfg["resample"], reducing_gap=None))
    crop = hf_center_crop(resized, cfg["crop_size"]["height"], cfg["crop_size"]["width"])
    x = (crop.astype(np.float64) * cfg["rescale_factor"]).astype(np.float32)
    mean = np.array(cfg["image_mean"], dtype=np.float32)
    std = np.array(cfg["image_std"], dtype=np.float32)
    x = (x - mean) / std
    return resized, np.ascontiguousarray(x.transpose(2, 0, 1)).astype("<f4")


def emit(name, arr, entry, full=False):
    raw = np.ascontiguousarray(arr).tobytes()
    entry["sha256"] = hashlib.sha256(raw).hexdigest()
    entry["shape"] = list(arr.shape)
    path = os.path.join(OUT, name)
    if full or len(raw) <= SIZE_LIMIT:
        with open(path, "wb") as f:
            f.write(raw)
        entry["file"] = name
    elif os.path.exists(path):
        os.remove(path)
    return entry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-images", action="store_true")
    args = ap.parse_args()
    if args.make_images:
        make_images()
        return
    os.makedirs(OUT, exist_ok=True)
    images = sorted(f for f in os.listdir(IMAGES) if not f.endswith((".md", ".txt")))
    manifest = {
        "generator": "tools/pil_reference.py",
        "pil_version": PIL.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "configs": CONFIGS,
        "images": {},
        "cases": [],
    }
    for fn in images:
        with Image.open(os.path.join(IMAGES, fn)) as im:
            im.seek(0)
            im.load()
            mode = im.mode
            rgb = np.array(im.convert("RGB"))
        stem = fn.replace(".", "_")
        manifest["images"][fn] = emit(f"{stem}.rgb.u8.bin", rgb, {"pil_mode": mode, "width": rgb.shape[1], "height": rgb.shape[0]})
        for cname, cfg in CONFIGS.items():
            if cname not in ("s224", "s50") and fn not in EXTRA.get(cname, []):
                continue
            with Image.open(os.path.join(IMAGES, fn)) as im:
                im.seek(0)
                im.load()
                resized, pixels = hf_pipeline(im, cfg)
            case = {"image": fn, "config": cname}
            full = (fn, cname) in ALWAYS_FULL
            case["resized"] = emit(f"{stem}.{cname}.resized.u8.bin", resized, {}, full)
            case["pixels"] = emit(f"{stem}.{cname}.pixels.f32.bin", pixels, {}, full)
            manifest["cases"].append(case)
    manifest["box_cases"] = []
    for i, bc in enumerate(BOX_CASES):
        with Image.open(os.path.join(IMAGES, bc["image"])) as im:
            im.seek(0)
            rgb = im.convert("RGB")
        out = np.array(rgb.resize(tuple(bc["size"]), resample=bc["resample"], box=tuple(bc["box"]), reducing_gap=None))
        manifest["box_cases"].append(dict(bc, result=emit(f"box{i}.resized.u8.bin", out, {})))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(manifest['cases'])} cases, {len(images)} images, {total} bytes in {OUT} (PIL {PIL.__version__})")


if __name__ == "__main__":
    main()
