"""Train the tiny SAM1 (or SAM2) that fewseg's semantic tests run on.

``python -m fewseg.sam.train_tiny --out tests/data/tiny_sam1.pt [--family sam1|sam2]
[--steps N] [--minutes M] [--seed S] [--size KEY=VALUE ...]``

It draws synthetic microscopy-like frames on the fly (:func:`synthetic_blobs`: dark,
noisy background, bright elliptical blobs of radius ~4-15 px, some touching, random frame
sizes, a random channel tint), and trains a tiny model of the official classes
(:func:`fewseg.sam.build.build_tiny_sam1` / ``build_tiny_sam2``: image encoder, prompt
encoder and mask decoder) from one positive point per blob, fed exactly as
:mod:`fewseg.sam.runtime` feeds images and points. The loss is SAM's: for each prompt the
best of the three multimask outputs (BCE + dice, on the low-res grid against each low-res
pixel's object fraction), plus the same loss for the single-mask output, plus 10 x the MSE
between the predicted and the actual IoU of every output. Adam with warm-up and cosine
decay, CPU, 2 threads. The decoder's prompt <-> image attention starts from a positional
initialisation (:func:`_init_positional_attention`). The result is saved with
:func:`fewseg.sam.build.save_tiny` (float16 storage, ``fewseg_arch``, and a ``note`` of
how it was made, with a held-out evaluation).

Given the seed and the number of steps a run is deterministic (2 threads,
``torch.use_deterministic_algorithms``); ``--minutes`` only stops early (the note records
where).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

PALETTE = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0],
                    [0.0, 1.0, 1.0], [1.0, 0.5, 0.0], [0.3, 0.6, 1.0]])


# --------------------------------------------------------------------------- data


def _place_blobs(rng, shape, n, radius, touching):
    """Random non-overlapping ellipses ``(row, col, r_row, r_col, angle)``; a fraction
    ``touching`` is put against an earlier blob."""
    y, x = shape
    blobs = []
    for _ in range(n * 20):
        if len(blobs) >= n:
            break
        ry, rx = rng.uniform(radius[0], radius[1], 2)
        rx = float(np.clip(rx, 0.6 * ry, 1.6 * ry))
        big = max(ry, rx)
        if blobs and rng.random() < touching:
            other = blobs[rng.integers(len(blobs))]
            direction = rng.uniform(0, 2 * np.pi)
            dist = max(other[2], other[3]) + big + rng.uniform(-0.5, 1.5)
            r, c = other[0] + dist * np.sin(direction), other[1] + dist * np.cos(direction)
        else:
            r, c = rng.uniform(-0.3 * big, y - 1 + 0.3 * big), rng.uniform(-0.3 * big, x - 1 + 0.3 * big)
        if not (0 <= r < y and 0 <= c < x):
            continue
        if all(np.hypot(r - b[0], c - b[1]) >= big + max(b[2], b[3]) - 0.5 for b in blobs):
            blobs.append((float(r), float(c), float(ry), float(rx), float(rng.uniform(0, np.pi))))
    return blobs


def synthetic_blobs(rng: np.random.Generator, shape: tuple[int, int] | None = None, *,
                    blobs=None, n_blobs: int | None = None, radius=(4.0, 15.0),
                    touching: float = 0.3, tint=None):
    """A synthetic fluorescence-like frame with bright elliptical blobs.

    Parameters
    ----------
    rng : numpy Generator
    shape : (int, int), optional
        ``(Y, X)``; random in 160..640 per side when not given.
    blobs : sequence of (row, col, r_row, r_col, angle), optional
        Put blobs exactly here (angle in radians, rotating the ellipse); otherwise
        ``n_blobs`` (default: by area) are placed at random.
    radius : (float, float)
        Range of the ellipse semi-axes in pixels.
    touching : float
        Fraction of random blobs placed against an earlier one.
    tint : (3,) floats, optional
        RGB colour of the channel; random from a viewer-like palette when not given.

    Returns
    -------
    rgb : ndarray, (Y, X, 3) uint8
    labels : ndarray, (Y, X) int32
        ``i + 1`` on the pixels of blob ``i`` (pixel centres inside the ellipse), 0 off.
    blobs : list of tuples
        The blobs drawn, in label order.
    """
    from scipy import ndimage as ndi

    if shape is None:
        shape = (int(rng.integers(160, 641)), int(rng.integers(160, 641)))
    y, x = shape
    if blobs is None:
        if n_blobs is None:
            n_blobs = int(rng.integers(3, 6 + y * x // 6000))
        blobs = _place_blobs(rng, shape, n_blobs, radius, touching)
    rows = np.arange(y, dtype=np.float64)[:, None]
    cols = np.arange(x, dtype=np.float64)[None, :]

    background = rng.uniform(5, 40)
    grad = rng.normal(0, 1, 3)
    image = background + 8 * (grad[0] * rows / y + grad[1] * cols / x) + np.zeros((y, x))
    labels = np.zeros((y, x), np.int32)
    for i, (r, c, ry, rx, angle) in enumerate(blobs, start=1):
        m = int(max(ry, rx)) + 4
        r0, r1 = max(int(r) - m, 0), min(int(r) + m + 2, y)
        c0, c1 = max(int(c) - m, 0), min(int(c) + m + 2, x)
        if r0 >= r1 or c0 >= c1:
            continue
        dy, dx = rows[r0:r1] - r, cols[:, c0:c1] - c
        ca, sa = np.cos(angle), np.sin(angle)
        u, v = (dy * ca + dx * sa) / ry, (-dy * sa + dx * ca) / rx
        d = np.sqrt(u * u + v * v)
        peak = rng.uniform(90, 230)
        # Soft edge about one pixel wide; a little brighter in the middle.
        edge = 1.0 / (1.0 + np.exp(-(1.0 - d) * min(ry, rx) / 0.6))
        profile = peak * edge * (0.75 + 0.25 * np.clip(1 - d * d, 0, 1))
        region = image[r0:r1, c0:c1]
        np.maximum(region, background + profile, out=region)
        lab = labels[r0:r1, c0:c1]
        lab[(d <= 1.0) & (lab == 0)] = i
    image = image + rng.normal(0, rng.uniform(2, 10), (y, x))
    sigma = rng.uniform(0, 1.0)
    if sigma > 0.3:
        image = ndi.gaussian_filter(image, sigma)
    if tint is None:
        tint = PALETTE[rng.integers(len(PALETTE))]
    rgb = np.clip(image[..., None] * np.asarray(tint, dtype=np.float64)[None, None, :], 0, 255)
    return rgb.astype(np.uint8), labels, list(blobs)


def _training_shape(rng, long_side=(160, 512)):
    """A random frame size: the long side in ``long_side``, aspect ratio 1 to 2. Frames
    smaller than the model input are scaled up, so blobs reach the model at 1x to ~3x."""
    long = int(rng.integers(long_side[0], long_side[1] + 1))
    short = max(32, int(long * rng.uniform(0.5, 1.0)))
    return (long, short) if rng.random() < 0.5 else (short, long)


def _init_positional_attention(module, *, pe_scale: float = 1.5, alpha: float = 1.7) -> None:
    """Initialisation that lets a tiny decoder learn *where* in minutes, not hours.

    * The prompt encoder's random Fourier features get frequency scale ``pe_scale``
      (official: 1.0, made for a 64 x 64 grid; the tiny model's grid is coarser in cells
      but finer in image terms).
    * The q / k projections of every prompt <-> image attention start as a selection of
      the sine and cosine of the same frequencies (times ``alpha``; in each head its own
      frequencies) plus small noise, so the attention score starts as a kernel of the
      distance between the prompt and each image cell (a sum of cosines of random
      Fourier features). Without this the decoder first learns "all blobs" and takes
      thousands of steps to use the prompt's position.

    All of these are ordinary weights / buffers of the official classes, trained further.
    """
    import torch

    from .build import prompt_heads

    prompt_encoder, decoder = prompt_heads(module)
    gauss = prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
    with torch.no_grad():
        gauss.copy_(torch.randn(gauss.shape) * pe_scale)
    half = gauss.shape[1]  # PE = [sin(f_0..f_half-1), cos(f_0..f_half-1)]

    def select(linear, heads):
        out, _ = linear.weight.shape
        weight = torch.randn(linear.weight.shape) * 0.02
        per_head = out // heads
        pairs = per_head // 2
        for h in range(heads):
            for j in range(pairs):
                freq = h * pairs + j
                if freq < half:
                    weight[h * per_head + j, freq] += alpha
                    weight[h * per_head + pairs + j, half + freq] += alpha
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.zero_()

    t = decoder.transformer
    attentions = [layer.cross_attn_image_to_token for layer in t.layers]
    attentions += [layer.cross_attn_token_to_image for layer in t.layers]
    attentions.append(t.final_attn_token_to_image)
    for attention in attentions:
        select(attention.q_proj, attention.num_heads)
        select(attention.k_proj, attention.num_heads)


def _sample_prompts(rng, labels, max_prompts):
    """(row, col) of one point inside each of up to ``max_prompts`` blobs, and the ids."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if len(ids) > max_prompts:
        ids = rng.choice(ids, max_prompts, replace=False)
    points = []
    for i in ids:
        rr, cc = np.nonzero(labels == i)
        if rng.random() < 0.5:  # near the centre (how fewseg prompts)
            k = int(np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2 + rng.uniform(0, 4, len(rr))))
        else:
            k = int(rng.integers(len(rr)))
        points.append((rr[k], cc[k]))
    return np.asarray(points, dtype=np.float64).reshape(-1, 2), ids


# --------------------------------------------------------------------------- training


def _losses(logits, target, iou_pred):
    """SAM-style loss for (P, 4, L, L) low-res logits vs (P, L, L) targets (the fraction
    of each low-res pixel inside the object: bilinear upsampling of the logits then puts
    the boundary where that fraction is 1/2). Mask 0 is the single-mask output, 1..3 the
    multimask outputs."""
    import torch
    import torch.nn.functional as F

    t = target[:, None].expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean((2, 3))
    prob = torch.sigmoid(logits)
    inter = (prob * t).sum((2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum((2, 3)) + t.sum((2, 3)) + 1)
    per_mask = bce + dice  # (P, 4)
    best, _ = per_mask[:, 1:].min(1)
    with torch.no_grad():
        # IoU of the binary mask with the object, counting each low-res pixel's object
        # fraction (close to the IoU at full resolution, also for small objects).
        hard = (logits > 0).float()
        inter_h = (hard * t).sum((2, 3))
        union = hard.sum((2, 3)) + t.sum((2, 3)) - inter_h
        true_iou = inter_h / union.clamp(min=1e-6)
    # The IoU head's MSE is ~1e-2 while the mask losses are ~0.3: weight it up, or it
    # never learns to rank the three masks (which is how fewseg picks one).
    iou_loss = 10.0 * F.mse_loss(iou_pred, true_iou)
    loss = best.mean() + per_mask[:, 0].mean() + iou_loss
    best_iou = true_iou[:, 1:].max(1).values.mean()
    return loss, best_iou


def _prepare(model, rgb, labels, points):
    """Model input (1, 3, S, S), the label image in the model's input frame (S, S), and
    prompt coordinates in the model's (x, y) input frame, exactly as
    :mod:`fewseg.sam.runtime` does it (SAM1: resize the long side and pad; SAM2: stretch)."""
    import torch
    from PIL import Image

    from .runtime import _sam1_input, _sam2_input

    s = model.image_size
    y, x = labels.shape
    inp, (nh, nw) = (_sam1_input if model.family == "sam1" else _sam2_input)(model, rgb)
    lab = np.zeros((s, s), labels.dtype)
    lab[:nh, :nw] = np.array(Image.fromarray(labels).resize((nw, nh), Image.NEAREST))
    coords = np.stack([points[:, 1] * (nw / x), points[:, 0] * (nh / y)], axis=1)
    return inp, lab, torch.as_tensor(coords, dtype=torch.float32)


def _image_features(model, x):
    """Image embedding (B, C, h, w) and, for SAM2, its high-res features, with gradients."""
    module = model.module
    if model.family == "sam1":
        return module.image_encoder(x), None
    backbone_out = module.forward_image(x)
    _, feats, _, _ = module._prepare_backbone_features(backbone_out)
    if module.directly_add_no_mem_embed:
        feats[-1] = feats[-1] + module.no_mem_embed
    s, b = model.image_size, x.shape[0]
    sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    maps = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(feats, sizes)]
    return maps[-1], maps[:-1]


def train(*, family: str = "sam1", steps: int = 2500, minutes: float | None = None,
          seed: int = 0, images_per_step: int = 2, prompts_per_image: int = 8,
          lr: float = 2e-3, log_every: int = 50, sizes: dict | None = None, progress=print):
    """Train a tiny SAM1 (or SAM2); returns ``(model, note)``. See the module docstring.

    Runs with 2 threads and ``torch.use_deterministic_algorithms(True)`` (without it the
    CPU backward of the rel-pos indexing differs run to run); both are restored after.
    """
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(family=family, steps=steps, minutes=minutes, seed=seed,
                      images_per_step=images_per_step, prompts_per_image=prompts_per_image,
                      lr=lr, log_every=log_every, sizes=sizes, progress=progress)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(*, family, steps, minutes, seed, images_per_step, prompts_per_image, lr,
           log_every, sizes, progress):
    import torch
    import torch.nn.functional as F

    from .build import build_tiny_sam1, build_tiny_sam2, prompt_heads

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    build_tiny = build_tiny_sam1 if family == "sam1" else build_tiny_sam2
    model = build_tiny(seed=seed, **(sizes or {}))
    module = model.module.train()
    _init_positional_attention(module)
    prompt_encoder, decoder = prompt_heads(module)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    warmup = max(1, steps // 20)

    def lr_at(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))

    start = time.monotonic()
    ema_loss = ema_iou = None
    step = 0
    for step in range(steps):
        if minutes is not None and time.monotonic() - start > 60 * minutes:
            progress(f"stopping at step {step}: {minutes} min reached")
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        inputs, targets, coords = [], [], []
        for _ in range(images_per_step):
            rgb, labels, _ = synthetic_blobs(rng, _training_shape(rng))
            points, ids = _sample_prompts(rng, labels, prompts_per_image)
            inp, lab, xy = _prepare(model, rgb, labels, points)
            tgt = torch.from_numpy((lab[None] == ids[:, None, None]).astype(np.float32))
            inputs.append(inp)
            # Area fraction on the low-res grid (4 x 4 input pixels per low-res pixel).
            targets.append(F.avg_pool2d(tgt[:, None], 4)[:, 0])
            coords.append(xy)
        features, high_res = _image_features(model, torch.cat(inputs))
        image_pe = prompt_encoder.get_dense_pe()
        total, ious = 0.0, []
        for b in range(images_per_step):
            n = len(coords[b])
            if n == 0:
                continue
            sparse, dense = prompt_encoder(
                points=(coords[b][:, None, :], torch.ones(n, 1, dtype=torch.int)), boxes=None, masks=None)
            if family == "sam1":
                low, iou_pred = decoder.predict_masks(
                    image_embeddings=features[b : b + 1], image_pe=image_pe,
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)
            else:
                low, iou_pred, _, _ = decoder.predict_masks(
                    image_embeddings=features[b : b + 1], image_pe=image_pe,
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                    repeat_image=True, high_res_features=[h[b : b + 1] for h in high_res])
            loss, best_iou = _losses(low, targets[b], iou_pred)
            total = total + loss
            ious.append(float(best_iou))
        opt.zero_grad(set_to_none=True)
        total = total / images_per_step
        total.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        value = float(total.detach())
        iou = float(np.mean(ious)) if ious else 0.0
        ema_loss = value if ema_loss is None else 0.95 * ema_loss + 0.05 * value
        ema_iou = iou if ema_iou is None else 0.95 * ema_iou + 0.05 * iou
        if log_every and (step + 1) % log_every == 0:
            progress(f"step {step + 1}/{steps}  loss {ema_loss:.4f}  best-mask IoU {ema_iou:.3f}  "
                     f"{time.monotonic() - start:.0f} s")
    else:
        step = steps
    module.eval()
    note = {
        "made_by": f"python -m fewseg.sam.train_tiny --family {family}",
        "family": family,
        "seed": seed,
        "steps": int(step),
        "planned_steps": steps,
        "images_per_step": images_per_step,
        "prompts_per_image": prompts_per_image,
        "lr": lr,
        "seconds": round(time.monotonic() - start, 1),
        "final_loss_ema": round(float(ema_loss or 0.0), 4),
        "final_train_iou_ema": round(float(ema_iou or 0.0), 4),
        "sizes": dict(sizes or {}),
        "torch": str(torch.__version__),
        "data": "fewseg.sam.train_tiny.synthetic_blobs (radius 4-15 px, long side 160-512 px)",
        "init": "_init_positional_attention(pe_scale=1.5, alpha=1.7)",
    }
    return model, note


def evaluate(model, *, seed: int = 12345, images: int = 4) -> dict:
    """Median IoU of centre-prompted blobs on fresh synthetic frames (through
    :mod:`fewseg.sam.runtime`, choosing each prompt's mask by predicted IoU)."""
    from .runtime import encode, logits_to_image, predict_points

    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(images):
        rgb, labels, _ = synthetic_blobs(rng)
        ids = [i for i in np.unique(labels) if i > 0]
        centres = np.array([np.argwhere(labels == i).mean(0) for i in ids])
        emb = encode(model, rgb)
        low, iou = predict_points(model, emb, np.round(centres))
        best = low[np.arange(len(ids)), iou.argmax(1)]
        masks = logits_to_image(model, emb, best) > 0
        for k, i in enumerate(ids):
            gt = labels == i
            scores.append((masks[k] & gt).sum() / max((masks[k] | gt).sum(), 1))
    return {"eval_median_iou": round(float(np.median(scores)), 4),
            "eval_fraction_iou_ge_0.7": round(float(np.mean(np.asarray(scores) >= 0.7)), 4),
            "eval_blobs": len(scores)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fewseg.sam.train_tiny", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="checkpoint to write (e.g. tests/data/tiny_sam1.pt)")
    parser.add_argument("--family", choices=("sam1", "sam2"), default="sam1")
    parser.add_argument("--steps", type=int, default=2500, help="optimiser steps (default 2500)")
    parser.add_argument("--minutes", type=float, default=None, help="stop early after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-images", type=int, default=4,
                        help="held-out synthetic frames to evaluate on (recorded in the note)")
    parser.add_argument("--size", action="append", default=[], metavar="KEY=VALUE",
                        help="override a tiny-architecture entry (JSON value), e.g. image_size=256")
    args = parser.parse_args(argv)
    import json

    sizes = {}
    for item in args.size:
        key, _, value = item.partition("=")
        sizes[key] = json.loads(value)

    from .build import save_tiny

    model, note = train(family=args.family, steps=args.steps, minutes=args.minutes,
                        seed=args.seed, lr=args.lr, sizes=sizes)
    if args.eval_images > 0:
        note.update(evaluate(model, images=args.eval_images))
    path = save_tiny(args.out, model.arch, model.module.state_dict(), note=note)
    import os

    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB): {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
