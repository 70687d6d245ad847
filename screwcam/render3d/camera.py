"""The camera: oblique perspective projection of the shaded height field (with
occlusion), and sensor/lens effects (defocus, motion blur, noise, white balance,
vignetting, JPEG)."""

from __future__ import annotations

import cv2
import numpy as np


def project(layers, z, tilt_deg: float, center, out_shape, origin, focal: float, z0: float = 0.0):
    """Project stage layers through a camera pitched by tilt_deg about the image x axis.

    The camera sits on the -y side of the surface, so tall things lean toward +y and hide
    what lies behind them. layers: list of 2-D or 3-D arrays on the stage grid.
    center: stage point (x, y) that lands on `origin` (x, y) of the output grid;
    focal: distance from camera to that point in stage pixels (perspective strength).
    Returns the projected layers (nearest-surface wins) and the coverage mask."""
    hs, ws = z.shape
    ho, wo = out_shape
    t = np.radians(tilt_deg)
    c, s = np.float32(np.cos(t)), np.float32(np.sin(t))
    xs = np.arange(ws, dtype=np.float32)[None, :] - np.float32(center[0])
    ys = np.arange(hs, dtype=np.float32)[:, None] - np.float32(center[1])
    zz = z - np.float32(z0)
    depth = -ys * s + zz * c  # towards the camera
    scale = np.float32(focal) / (np.float32(focal) - depth)
    px = np.rint(origin[0] + xs * scale).astype(np.int32)
    py = np.rint(origin[1] + (ys * c + zz * s) * scale).astype(np.int32)
    # Write far rows first and near rows last: along any viewing ray the surface point
    # nearest the camera lies on the row nearest the camera (smallest y), so the last
    # write is the visible one (numpy assigns repeated indices in order).
    px, py = px[::-1].ravel(), py[::-1].ravel()
    ok = (px >= 0) & (px < wo) & (py >= 0) & (py < ho)
    idx = (py * wo + px)[ok]
    covered = np.zeros(ho * wo, bool)
    covered[idx] = True
    out = []
    for layer in layers:
        flat = layer[::-1].reshape(hs * ws, -1)[ok]
        dst = np.zeros((ho * wo, flat.shape[1]), layer.dtype)
        dst[idx] = flat
        out.append(dst.reshape((ho, wo) + layer.shape[2:]))
    covered = covered.reshape(ho, wo)
    return out, covered


def fill_holes(img: np.ndarray, covered: np.ndarray, nearest=False) -> np.ndarray:
    """Fill pixels no surface landed on from their covered neighbours (in place)."""
    if covered.all():
        return img
    if nearest:
        # integer layers (ids, parts): take the largest covered neighbour's value
        for k in (3, 7):
            grown = cv2.dilate(img, np.ones((k, k), np.uint8))
            miss = ~covered
            img[miss] = grown[miss]
            covered = covered | (grown > 0)
            if covered.all():
                break
        return img
    cov = covered.astype(np.float32)
    for k in (5, 15, 45):
        weighted = img * cov[..., None] if img.ndim == 3 else img * cov
        num = cv2.blur(weighted, (k, k))
        den = cv2.blur(cov, (k, k))
        miss = ~covered & (den > 1e-3)
        den = np.maximum(den, 1e-3)
        img[miss] = (num / (den[..., None] if img.ndim == 3 else den))[miss]
        covered = covered | miss
        if covered.all():
            break
        cov = covered.astype(np.float32)
    return img


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(
        k,
        (int(round(c - dx)), int(round(c - dy))),
        (int(round(c + dx)), int(round(c + dy))),
        1.0,
        1,
    )
    return k / k.sum()


def expose(linear: np.ndarray, rig: dict) -> np.ndarray:
    """Auto exposure, as a camera does it: scale so the log-average luminance lands on
    the rig's key (a mid grey, 0.1-0.3 linear), times the rig's relative exposure
    (under 1 for dim, over 1 for overexposed)."""
    small = cv2.resize(linear, (16, 16), interpolation=cv2.INTER_AREA)
    lum = small[..., 0] * 0.11 + small[..., 1] * 0.59 + small[..., 2] * 0.3
    log_avg = float(np.exp(np.mean(np.log(np.maximum(lum, 0.0) + 1e-4))))
    return linear * np.float32(rig.get("key", 0.18) / max(log_avg, 1e-4) * rig["exposure"])


def to_uint8(linear: np.ndarray) -> np.ndarray:
    return (np.clip(linear, 0.0, 1.0) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)


def effects(rng: np.random.Generator, linear: np.ndarray, rig: dict, scale: float, ov: dict):
    """Lens and sensor: linear radiance -> BGR uint8. scale: output pixels per 96 px of a
    head crop (effect sizes grow with it). Returns image and a dict of what was applied."""
    applied: dict = {}
    img = expose(linear, rig)
    wb = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    if rng.random() < 0.25:  # a strong colour cast: tungsten, shade, fluorescent
        casts = ((0.62, 0.85, 1.0), (1.12, 1.0, 0.85), (0.95, 1.06, 0.9))
        wb *= np.array(casts[int(rng.integers(len(casts)))], np.float32)
    img = img * wb
    if ov.get("defocus", rng.random() < 0.3):
        sigma = float(rng.uniform(0.4, 1.8)) * scale
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        applied["defocus"] = round(sigma, 2)
    if ov.get("motion_blur", rng.random() < 0.15):
        length = int(max(3, rng.uniform(3, 9) * scale)) | 1
        img = cv2.filter2D(img, -1, _motion_kernel(length, float(rng.uniform(0, np.pi))))
        applied["motion_blur"] = length
    if rng.random() < 0.3:  # vignetting / uneven illumination
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rr = ((xx - cx) ** 2 + (yy - cy) ** 2) / float(max(h, w) ** 2)
        img = img * (1.0 - float(rng.uniform(0.1, 0.5)) * rr)[..., None]
    img = np.clip(img, 0.0, 1.0) ** (1 / 2.2)
    sigma = float(rng.uniform(0.002, 0.025)) * rig.get("gain_noise", 1.0)
    if ov.get("noise", True):
        shot = np.sqrt(np.maximum(img, 0.0)) * sigma
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * (shot + sigma * 0.5)
        applied["noise"] = round(sigma, 4)
    if rng.random() < 0.3:  # the phone's sharpening (it sharpens the noise too)
        amount = float(rng.uniform(0.3, 1.2))
        img = img + amount * (img - cv2.GaussianBlur(img, (0, 0), max(0.6, 0.8 * scale)))
        applied["sharpen"] = round(amount, 2)
    out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if ov.get("jpeg", rng.random() < 0.6):
        q = int(rng.integers(20, 96))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        applied["jpeg"] = q
    return out, applied
