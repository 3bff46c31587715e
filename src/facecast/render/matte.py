"""Image helpers of composition: placing a picture by scale and offset, loading one with
its alpha, refining a person matte with a guided filter, carrying the person's colours
out past the matte's edge (so no old background shows in soft edges), and the circle /
rounded-rectangle masks.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facecast.media.image import MAX_IMAGE_BYTES
from facecast.render.composition import MaskKind


def _place(
    image: np.ndarray,
    sx: float,
    sy: float,
    ox: float,
    oy: float,
    width: int,
    height: int,
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """``image`` resampled so its pixel corner (x, y) lands at (x*sx + ox, y*sy + oy).

    The output is ``width`` x ``height``; what falls outside ``image`` repeats
    its border.
    """
    if sx < 1.0 or sy < 1.0:
        # Shrinking by interpolation aliases; area-average down first, place after.
        ih, iw = image.shape[:2]
        nw, nh = max(1, round(iw * sx)), max(1, round(ih * sy))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = sx * iw / nw, sy * ih / nh
        interpolation = cv2.INTER_LINEAR
    # Pixel-centre convention, as cv2.resize: dst + 0.5 = (src + 0.5) * s + o.
    m = np.array([[sx, 0.0, ox + 0.5 * sx - 0.5], [0.0, sy, oy + 0.5 * sy - 0.5]], np.float64)
    return cv2.warpAffine(
        image, m, (width, height), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )


def _load_rgba(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An image file as RGB uint8 plus its alpha (float32 0..1), None when it has none."""
    from facecast.media.image import load_image_alpha

    # load_image_alpha checks the size from the header before decoding (bombs) and
    # applies EXIF orientation to images without alpha.
    return load_image_alpha(path, max_bytes=MAX_IMAGE_BYTES)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter (He, Sun and Tang): ``src`` smoothed so its edges follow ``guide``.

    ``guide`` is HxWx3 float32 in 0..1, ``src`` HxW float32. The 3x3 systems
    are solved in closed form per pixel (a few box filters, no per-pixel solver).
    """
    r = radius
    mi = _box(guide, r)
    mp = _box(src, r)
    cov = _box(guide * src[..., None], r) - mi * mp[..., None]

    def var(i: int, j: int) -> np.ndarray:
        return _box(guide[..., i] * guide[..., j], r) - mi[..., i] * mi[..., j]

    rr, rg, rb = var(0, 0) + eps, var(0, 1), var(0, 2)
    gg, gb, bb = var(1, 1) + eps, var(1, 2), var(2, 2) + eps
    # Inverse of the symmetric covariance matrix by cofactors.
    i_rr, i_rg, i_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    i_gg, i_gb, i_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    c0, c1, c2 = cov[..., 0], cov[..., 1], cov[..., 2]
    a = np.dstack(
        [
            (i_rr * c0 + i_rg * c1 + i_rb * c2) / det,
            (i_rg * c0 + i_gg * c1 + i_gb * c2) / det,
            (i_rb * c0 + i_gb * c1 + i_bb * c2) / det,
        ]
    ).astype(np.float32)
    b = mp - (a * mi).sum(axis=2)
    return (_box(a, r) * guide).sum(axis=2) + _box(b, r)


def refine_matte(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """A segmentation mask (blocky, from a 256 px model) snapped to the image's edges.

    The guided filter moves the soft edge onto the real outline (hair, collar);
    the contrast curve after it removes the faint glow a guided filter leaves
    around the person and keeps a transition of a pixel or two.
    """
    guide = image.astype(np.float32) / 255.0
    radius = max(2, round(max(image.shape[:2]) / 80))
    q = guided_filter(guide, coarse.astype(np.float32), radius, 1e-3)
    return _smoothstep(0.2, 0.8, np.clip(q, 0.0, 1.0)).astype(np.float32)


def _push_pull(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill the whole image from the pixels with weight, by a normalised pyramid."""
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    num, den = image * weight[..., None], weight.astype(np.float32)
    while min(den.shape) > 8:
        levels.append((num, den))
        num, den = cv2.pyrDown(num), cv2.pyrDown(den)
    est = num / np.maximum(den, 1e-6)[..., None]
    for num, den in reversed(levels):
        up = cv2.resize(est, (num.shape[1], num.shape[0]), interpolation=cv2.INTER_LINEAR)
        k = np.clip(den * 4.0, 0.0, 1.0)[..., None]
        est = num / np.maximum(den, 1e-6)[..., None] * k + up * (1.0 - k)
    return est


def foreground_colors(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The person's own colours, also under soft edges and carried past them (uint8 RGB).

    A soft-edge pixel is a mix of person and old background; drawn as it is on
    a new background it leaves a halo of the old one. Where alpha is fairly
    high the mix is solved for the person's colour against an estimate of the
    old background; where it is low, the nearby solid person colour is used.
    """
    img = image.astype(np.float32) / 255.0
    inside = _push_pull(img, (alpha > 0.97).astype(np.float32))
    behind = _push_pull(img, (alpha < 0.03).astype(np.float32))
    a = alpha[..., None]
    solved = np.clip((img - (1.0 - a) * behind) / np.maximum(a, 1e-3), 0.0, 1.0)
    t = _smoothstep(0.15, 0.7, alpha)[..., None]
    fg = np.where(a >= 0.98, img, t * solved + (1.0 - t) * inside)
    return np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)


def shape_mask(
    kind: MaskKind,
    box_w: float,
    box_h: float,
    corner_radius: float,
    x0: float,
    y0: float,
    width: int,
    height: int,
) -> np.ndarray | None:
    """Anti-aliased coverage (float32 0..1) of a circle or rounded rectangle.

    The shape fills a ``box_w`` x ``box_h`` box whose top-left corner is at
    (``x0``, ``y0``) in the coordinates of the ``width`` x ``height`` output
    (the box may be larger than the output). None for ``kind="none"``.
    """
    if kind == "none":
        return None
    hw, hh = box_w / 2.0, box_h / 2.0
    if kind == "circle":
        hw = hh = radius = min(hw, hh)
    else:
        radius = corner_radius * min(box_w, box_h)
    # Signed distance to a rounded box (negative inside), one pixel of ramp across the edge.
    xs = np.abs(np.arange(width, dtype=np.float32) + 0.5 - (x0 + box_w / 2.0)) - (hw - radius)
    ys = np.abs(np.arange(height, dtype=np.float32) + 0.5 - (y0 + box_h / 2.0)) - (hh - radius)
    qx, qy = xs[None, :], ys[:, None]
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    dist = outside + np.minimum(np.maximum(qx, qy), 0.0) - radius
    return np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)
