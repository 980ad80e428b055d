"""Procedural test plates with exact ground truth (numpy only).

A textured foreground object moves over a textured background; the generator returns the
plate, the object's soft alpha (anti-aliased edge), its binary mask and a depth map, for
every frame. Used by ``roto demo``, the tests and the benchmarks: cheap, exact, licence-free.

Images are float32 (H, W, 3) scene-linear Rec.709 in [0, ~1], origin top-left; alpha float32
(H, W) in [0, 1]; mask bool (H, W) = alpha >= 0.5; depth float32 (H, W) camera distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SyntheticFrame:
    frame: int
    rgb: np.ndarray  # float32 (H, W, 3) scene-linear
    alpha: np.ndarray  # float32 (H, W) in [0, 1]
    depth: np.ndarray  # float32 (H, W)
    centre: tuple[float, float]  # object centre (x, y) in pixels: a click that hits it

    @property
    def mask(self) -> np.ndarray:
        return self.alpha >= 0.5


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray, contrast: float) -> np.ndarray:
    """Smooth multi-scale value noise tinted around ``base`` (sRGB 0..1 triple) → (H, W, 3) sRGB."""
    import cv2

    acc = np.zeros((h, w), np.float32)
    amp = 1.0
    for cells in (4, 9, 21, 47):
        grid = rng.random((cells, max(2, round(cells * w / h))), dtype=np.float32)
        acc += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.55
    acc = (acc - acc.mean()) / (acc.std() + 1e-6)
    tint = rng.normal(0, 0.04, 3).astype(np.float32)
    out = base[None, None, :] + tint + contrast * acc[:, :, None] * np.array([1.0, 0.9, 0.8], np.float32)
    return np.clip(out, 0.02, 0.98).astype(np.float32)


def _blob_sdf(h: int, w: int, cx: float, cy: float, rx: float, ry: float, angle: float, wobble: float, t: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a wobbly rotated ellipse."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x = xx + 0.5 - cx
    y = yy + 0.5 - cy
    ca, sa = np.cos(angle), np.sin(angle)
    u = ca * x + sa * y
    v = -sa * x + ca * y
    theta = np.arctan2(v / ry, u / rx)
    r_shape = 1.0 + wobble * np.sin(3 * theta + t) + 0.5 * wobble * np.cos(5 * theta - 2 * t)
    rho = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    scale = min(rx, ry)
    return ((rho - r_shape) * scale).astype(np.float32)


def generate(
    width: int = 640,
    height: int = 360,
    frames: int = 24,
    start: int = 1001,
    seed: int = 7,
    motion: float = 1.0,
) -> list[SyntheticFrame]:
    """A clip of ``frames`` frames numbered from ``start``; ``motion`` scales the object's speed."""
    rng = np.random.default_rng(seed)
    pad = int(0.25 * max(width, height))
    bg_big = _texture(rng, height + 2 * pad, width + 2 * pad, np.array([0.35, 0.42, 0.30], np.float32), 0.10)
    fg_tex = _texture(rng, height, width, np.array([0.80, 0.45, 0.25], np.float32), 0.12)
    bg_big = _srgb_to_linear(bg_big)
    fg_tex = _srgb_to_linear(fg_tex)
    rx, ry = 0.16 * width, 0.22 * height
    out: list[SyntheticFrame] = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        cx = width * (0.3 + 0.4 * t * motion) + 0.04 * width * np.sin(6.0 * t)
        cy = height * (0.5 + 0.12 * np.sin(2 * np.pi * t * motion))
        angle = 0.6 * np.sin(np.pi * t * motion)
        sdf = _blob_sdf(height, width, cx, cy, rx * (1 + 0.1 * t), ry * (1 + 0.1 * t), angle, 0.08, 4 * t)
        alpha = np.clip(0.5 - sdf, 0.0, 1.0).astype(np.float32)  # 1-pixel anti-aliased edge
        # background pans slowly (camera move); foreground texture rides with the object
        ox = pad - int(round(0.05 * width * t * motion))
        oy = pad + int(round(0.02 * height * np.sin(np.pi * t)))
        bg = bg_big[oy:oy + height, ox:ox + width]
        shift_x = int(round(cx - width * 0.5))
        shift_y = int(round(cy - height * 0.5))
        fg = np.roll(np.roll(fg_tex, shift_y, axis=0), shift_x, axis=1)
        shade = (1.0 - 0.25 * np.clip(-sdf / (0.8 * ry), 0, 1))[:, :, None]
        rgb = alpha[:, :, None] * fg * (2.0 - shade) + (1.0 - alpha[:, :, None]) * bg
        depth = np.where(alpha > 0.5, 3.0 + 0.2 * np.clip(sdf / ry + 1, 0, 1), 10.0 - 2.0 * np.linspace(0, 1, height)[:, None])
        out.append(SyntheticFrame(start + i, rgb.astype(np.float32), alpha, depth.astype(np.float32), (float(cx), float(cy))))
    return out


def write_exr_sequence(clip: list[SyntheticFrame], folder: str | Path, name: str = "plate", fps: int = 24) -> str:
    """Write the plates as half-float scene-linear EXRs ``<name>.####.exr``; returns the pattern."""
    import OpenImageIO as oiio

    from engine.util.atomic import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for f in clip:
        h, w = f.rgb.shape[:2]
        spec = oiio.ImageSpec(w, h, 3, "half")
        spec.attribute("compression", "zip")
        spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), [fps, 1])
        spec.attribute("oiio:ColorSpace", "lin_rec709")
        target = folder / f"{name}.{f.frame:04d}.exr"
        with atomic_path(target) as tmp:
            out = oiio.ImageOutput.create(str(tmp))
            if out is None or not out.open(str(tmp), spec):
                from engine.errors import OutputError

                raise OutputError(f"cannot write EXR ({oiio.geterror()})", path=str(target))
            out.write_image(f.rgb)
            out.close()
    return str(folder / f"{name}.####.exr")
