"""Procedural matting clips with exact ground-truth alpha (numpy + OpenCV, licence-free).

Three kinds, each small enough to generate inside a test:

``hair``
    A textured, shaded body with a 1-pixel anti-aliased edge and hair-like semi-transparent
    strands (0.5–1.6 px wide, 35–90 % opaque, swaying) over a textured background that pans.
``motionblur``
    The same actor moving fast: every frame integrates the scene over a 180° shutter (sub-frame
    samples of premultiplied colour and alpha), so the ground truth holds the real blur.
``greenscreen``
    An uneven green screen (light fall-off, vignette, wrinkles, tracking markers), a grey stand
    and dark studio at the frame edges outside the screen, and green spill on the actor's edges
    and hair. The ground-truth alpha is the actor's coverage; the spill is part of the plate.

Every plate gets mild sensor noise (fixed seed per frame). Compositing is exact in scene-linear
light: ``I = sum_s(alpha_s * F_s) / S + (1 - alpha) * B`` with ``alpha = sum_s(alpha_s) / S``.

Images are float32 ``(H, W, 3)`` scene-linear Rec.709; :meth:`MatteClip.read_working` gives the
sRGB-encoded working space every backend sees. Alpha is float32 ``(H, W)`` in [0, 1]; the mask
is ``alpha >= 0.5``. :class:`MatteClip` is a frame source (the bits of
:class:`engine.media.clip.Clip` sessions and backends use), so a session can run on it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from engine.ops.transfer import linear_to_srgb, srgb_to_linear

KINDS = ("hair", "motionblur", "greenscreen")
__all__ = ["KINDS", "MatteClip", "SyntheticMatteFrame", "generate_matte_clip", "linear_to_srgb", "srgb_to_linear"]


@dataclass(frozen=True)
class SyntheticMatteFrame:
    frame: int
    rgb: np.ndarray  # float32 (H, W, 3) scene-linear
    alpha: np.ndarray  # float32 (H, W) ground truth
    speed: float  # object speed this frame, pixels/frame

    @property
    def mask(self) -> np.ndarray:
        return self.alpha >= 0.5


@dataclass
class MatteClip:
    """A generated clip: frames by plate number, and the frame-source methods backends call."""

    kind: str
    frames_: list[SyntheticMatteFrame]
    path: str = "/synthetic/matte.####.exr"
    _by_frame: dict[int, SyntheticMatteFrame] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_frame = {f.frame: f for f in self.frames_}
        from engine.media.types import ClipInfo

        h, w = self.frames_[0].alpha.shape
        self.info = ClipInfo(path=self.path, kind="sequence", format="exr", first=self.frames_[0].frame,
                             last=self.frames_[-1].frame, width=w, height=h, fps=Fraction(24),
                             channels=("R", "G", "B"), colourspace="Linear Rec.709 (sRGB)")
        self.content_id = f"synthetic-matte-{self.kind}-{w}x{h}-{len(self.frames_)}-{id(self):x}"

    # frame source ------------------------------------------------------------------------
    @property
    def frames(self) -> range:
        return range(self.frames_[0].frame, self.frames_[-1].frame + 1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.frames_[0].alpha.shape  # type: ignore[return-value]

    def __getitem__(self, frame: int) -> SyntheticMatteFrame:
        return self._by_frame[int(frame)]

    def read(self, frame: int) -> np.ndarray:
        return self[frame].rgb

    def read_rgb(self, frame: int) -> np.ndarray:
        return self[frame].rgb

    def read_working(self, frame: int) -> np.ndarray:
        return linear_to_srgb(self[frame].rgb)

    def read_uint8(self, frame: int) -> np.ndarray:
        return (np.clip(self.read_working(frame), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def alpha(self, frame: int) -> np.ndarray:
        return self[frame].alpha

    def mask(self, frame: int) -> np.ndarray:
        return self[frame].mask


# --- textures and shapes ------------------------------------------------------------------------


def _noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, ...] = (4, 9, 21, 47)) -> np.ndarray:
    """Smooth multi-scale value noise, zero mean, unit std, float32 (H, W)."""
    import cv2

    acc = np.zeros((h, w), np.float32)
    amp = 1.0
    for c in cells:
        grid = rng.random((c, max(2, round(c * w / h))), dtype=np.float32)
        acc += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.55
    return (acc - acc.mean()) / (acc.std() + 1e-6)


def _texture(rng: np.random.Generator, h: int, w: int, base_srgb: tuple[float, float, float], contrast: float) -> np.ndarray:
    n = _noise(rng, h, w)
    n2 = _noise(rng, h, w, (13, 31, 77))
    tint = np.array([1.0, 0.85, 0.7], np.float32)
    out = np.asarray(base_srgb, np.float32)[None, None, :] + contrast * (n[:, :, None] * tint + 0.5 * n2[:, :, None])
    return srgb_to_linear(np.clip(out, 0.02, 0.98))


def _body_sdf(h: int, w: int, cx: float, cy: float, rx: float, ry: float, angle: float, t: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a wobbly rotated ellipse, at pixel centres."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x = xx - cx
    y = yy - cy
    ca, sa = np.cos(angle), np.sin(angle)
    u = ca * x + sa * y
    v = -sa * x + ca * y
    theta = np.arctan2(v / ry, u / rx)
    r_shape = 1.0 + 0.07 * np.sin(3 * theta + t) + 0.035 * np.cos(5 * theta - 2 * t)
    rho = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    return ((rho - r_shape) * min(rx, ry)).astype(np.float32)


@dataclass(frozen=True)
class _Strand:
    theta: float  # root angle on the body outline (radians, image coordinates)
    length: float  # fraction of ry
    width: float  # pixels
    opacity: float
    curl: float
    phase: float
    colour: tuple[float, float, float]  # linear


def _strands(rng: np.random.Generator, count: int) -> list[_Strand]:
    out = []
    for _ in range(count):
        theta = float(rng.uniform(-np.pi * 0.95, -np.pi * 0.05))  # upper half (y up is negative)
        base = np.array([0.10, 0.055, 0.03]) * float(rng.uniform(0.7, 1.6))
        out.append(_Strand(theta, float(rng.uniform(0.18, 0.45)), float(rng.uniform(0.5, 1.6)),
                           float(rng.uniform(0.35, 0.9)), float(rng.uniform(-0.8, 0.8)), float(rng.uniform(0, 6.28)),
                           tuple(float(c) for c in base)))
    return out


def _render_strands(h: int, w: int, strands: list[_Strand], cx: float, cy: float, rx: float, ry: float,
                    angle: float, t: float, ss: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased strands: (alpha float32 (H, W), premultiplied colour float32 (H, W, 3)).

    Each strand is drawn at ``ss`` times the resolution inside its own bounding box, area-averaged
    down and composited "over" the strands before it.
    """
    import cv2

    alpha = np.zeros((h, w), np.float32)
    colour = np.zeros((h, w, 3), np.float32)
    ca, sa = np.cos(angle), np.sin(angle)
    for s in strands:
        # root slightly inside the outline so strands grow out of the body
        u0, v0 = 0.97 * rx * np.cos(s.theta), 0.97 * ry * np.sin(s.theta)
        nx, ny = np.cos(s.theta), np.sin(s.theta) * rx / ry
        nn = np.hypot(nx, ny)
        nx, ny = nx / nn, ny / nn
        length = s.length * ry
        sway = 0.35 * np.sin(2.2 * t + s.phase)
        f = np.linspace(0.0, 1.0, 13)
        bend = (s.curl + sway) * f * f
        du = nx * np.cos(bend) - ny * np.sin(bend)
        dv = nx * np.sin(bend) + ny * np.cos(bend)
        u, v = u0 + du * length * f, v0 + dv * length * f
        xs = cx + ca * u - sa * v
        ys = cy + sa * u + ca * v
        m = int(np.ceil(s.width)) + 2
        x0, y0 = max(0, int(np.floor(xs.min())) - m), max(0, int(np.floor(ys.min())) - m)
        x1, y1 = min(w, int(np.ceil(xs.max())) + m + 1), min(h, int(np.ceil(ys.max())) + m + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        pts = np.stack([(xs - x0) * ss, (ys - y0) * ss], axis=1)
        arr = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)  # 4 fractional bits
        layer = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint8)
        cv2.polylines(layer, [arr], False, 255, max(1, int(round(s.width * ss))), cv2.LINE_AA, shift=4)
        a = cv2.resize(layer.astype(np.float32) / 255.0, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA) * s.opacity
        roi_a = alpha[y0:y1, x0:x1]
        roi_c = colour[y0:y1, x0:x1]
        roi_c *= (1 - a)[:, :, None]
        roi_c += a[:, :, None] * np.asarray(s.colour, np.float32)
        roi_a *= 1 - a
        roi_a += a
    return alpha, colour


def _green_screen(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An uneven, imperfect green screen with a stand and dark studio at the edges (linear)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = xx / w, yy / h
    light = 0.75 + 0.35 * (1 - gx) * (0.6 + 0.4 * gy)  # key light from the left
    light *= 1.0 - 0.35 * ((gx - 0.5) ** 2 + (gy - 0.45) ** 2)  # vignette
    light *= 1.0 + 0.08 * _noise(rng, h, w, (3, 7, 15))
    wrinkles = 1.0 - 0.12 * np.clip(np.sin(gx * 23.0 + 3.0 * np.sin(gy * 5.0)) - 0.7, 0, None) / 0.3
    screen = np.array([0.045, 0.42, 0.075], np.float32)[None, None, :] * (light * wrinkles)[:, :, None]
    screen *= 1.0 + 0.03 * _noise(rng, h, w, (40, 90))[:, :, None]
    for mx, my in ((0.2, 0.2), (0.8, 0.25), (0.75, 0.8), (0.25, 0.78)):  # tracking markers
        x0, y0 = int(mx * w), int(my * h)
        s = max(2, w // 120)
        screen[y0 - s:y0 + s + 1, x0 - 1:x0 + 1] = 0.3
        screen[y0 - 1:y0 + 1, x0 - s:x0 + s + 1] = 0.3
    edge = max(4, int(0.06 * w))
    screen[:, :edge] = 0.02  # dark studio
    screen[:, w - edge:] = 0.025
    stand_x = int(0.88 * w)
    screen[int(0.55 * h):, stand_x:stand_x + max(3, w // 90)] = 0.18  # a grey stand
    return screen.astype(np.float32)


# --- the generator ------------------------------------------------------------------------------


def generate_matte_clip(kind: str = "hair", width: int = 480, height: int = 270, frames: int = 16,
                        start: int = 1001, seed: int = 11, noise: float = 0.004) -> MatteClip:
    """A clip of ``kind`` (``hair``, ``motionblur``, ``greenscreen``) with ground-truth alpha."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic matte kind {kind!r}; choose one of {KINDS}")
    rng = np.random.default_rng(seed + KINDS.index(kind) * 101)
    h, w = int(height), int(width)
    pad = int(0.3 * max(w, h))
    if kind == "greenscreen":
        bg_big = None
        screen = _green_screen(rng, h, w)
    else:
        bg_big = _texture(rng, h + 2 * pad, w + 2 * pad, (0.40, 0.46, 0.36), 0.10)
        screen = None
    fg_tex = _texture(rng, 2 * h, 2 * w, (0.80, 0.50, 0.32), 0.09)
    strands = _strands(rng, 34 if kind != "motionblur" else 18)
    hair_rgb = np.mean([st.colour for st in strands], axis=0).astype(np.float32)[None, None, :]
    hair_tex = np.clip(_noise(rng, h, w, (60, 140)), -1.5, 1.5) / 3.0
    rx, ry = 0.14 * w, 0.27 * h
    shutter = 0.5
    out: list[SyntheticMatteFrame] = []

    def pose(tf: float) -> tuple[float, float, float]:
        """Object centre and angle at (fractional) frame index ``tf``."""
        u = tf / max(1, frames - 1)
        if kind == "motionblur":
            # fast, accelerating sweep left→right with a vertical bounce
            cx = w * (0.25 + 0.5 * (0.5 - 0.5 * np.cos(np.pi * u)))
            cy = h * (0.52 + 0.08 * np.sin(2 * np.pi * u * 1.5))
            ang = 0.25 * np.sin(np.pi * u)
        else:
            cx = w * (0.40 + 0.2 * u) + 0.03 * w * np.sin(5.0 * u)
            cy = h * (0.55 + 0.05 * np.sin(2 * np.pi * u))
            ang = 0.3 * np.sin(np.pi * u)
        return float(cx), float(cy), float(ang)

    for i in range(frames):
        c0 = pose(i - 0.5 * shutter)
        c1 = pose(i + 0.5 * shutter)
        speed = float(np.hypot(c1[0] - c0[0], c1[1] - c0[1]) / shutter)
        samples = 1 if kind != "motionblur" else int(min(16, max(1, np.ceil(speed * shutter) + 1)))
        acc_a = np.zeros((h, w), np.float32)
        acc_c = np.zeros((h, w, 3), np.float32)
        for s in range(samples):
            tf = i + (((s + 0.5) / samples) - 0.5) * shutter if samples > 1 else float(i)
            cx, cy, ang = pose(tf)
            grow = 1.0 + 0.04 * np.sin(tf / 3.0)
            sdf = _body_sdf(h, w, cx, cy, rx * grow, ry * grow, ang, 0.4 * tf)
            a_body = np.clip(0.5 - sdf, 0.0, 1.0)
            # body colour: texture riding with the object, shaded towards the edge
            ox = int(round(w / 2 - cx)) % w
            oy = int(round(h / 2 - cy)) % h
            tex = fg_tex[oy:oy + h, ox:ox + w]
            shade = 0.75 + 0.35 * np.clip(-sdf / (0.6 * ry), 0, 1)
            f_body = tex * shade[:, :, None]
            # a hair cap on the top of the "head": the strands grow out of hair of their colour
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            v = -np.sin(ang) * (xx - cx) + np.cos(ang) * (yy - cy)
            cap = np.clip((-v / (ry * grow) - 0.30) / 0.25, 0.0, 1.0)[:, :, None]
            streak = 0.8 + 0.4 * hair_tex[(yy.astype(int) - int(cy)) % h, (xx.astype(int) - int(cx)) % w][:, :, None]
            f_body = (1 - cap) * f_body + cap * hair_rgb * streak
            if kind == "greenscreen":  # spill: green bounce on the edge of the actor
                spill = 0.10 * np.exp(-np.clip(-sdf, 0, None) / 5.0)
                f_body = f_body + spill[:, :, None] * np.array([0.0, 1.0, 0.1], np.float32)
            a_hair, c_hair = _render_strands(h, w, strands, cx, cy, rx * grow, ry * grow, ang, tf)
            if kind == "greenscreen":
                c_hair = c_hair + 0.05 * a_hair[:, :, None] * np.array([0.0, 1.0, 0.1], np.float32)
            a = a_body + a_hair * (1 - a_body)
            prem = a_body[:, :, None] * f_body + (1 - a_body[:, :, None]) * c_hair
            acc_a += a
            acc_c += prem
        alpha = (acc_a / samples).astype(np.float32)
        prem = acc_c / samples
        if kind == "greenscreen":
            bg = screen
        else:
            u = i / max(1, frames - 1)
            ox = pad - int(round(0.06 * w * u))
            oy = pad + int(round(0.02 * h * np.sin(np.pi * u)))
            bg = bg_big[oy:oy + h, ox:ox + w]
        rgb = prem + (1 - alpha[:, :, None]) * bg
        if noise > 0:
            nrng = np.random.default_rng(seed * 1000 + i)
            rgb = rgb + nrng.normal(0.0, 1.0, rgb.shape).astype(np.float32) * (noise * (0.3 + np.sqrt(np.clip(rgb, 0, None))))
        out.append(SyntheticMatteFrame(start + i, np.clip(rgb, 0.0, None).astype(np.float32), alpha, speed))
    return MatteClip(kind, out, path=f"/synthetic/{kind}.####.exr")
