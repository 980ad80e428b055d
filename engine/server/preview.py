"""A PNG of one plate frame with the session's masks laid over it, for host prompt dialogs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from engine.session.session import Session


def render_preview(session: Session, frame: int, *, overlay: bool = True, max_size: int = 1024) -> bytes:
    """8-bit sRGB PNG bytes of ``frame`` (longest side at most ``max_size``); each object's mask
    tinted in its colour at 45 % when ``overlay``. Coordinates in the image scale linearly to the
    plate's: the host multiplies clicks by ``plate width / image width``."""
    import cv2
    import numpy as np

    from engine.errors import OutputError

    f = session.check_frame(frame)
    rgb = np.asarray(session.clip.read_uint8(f), np.float32)
    if overlay:
        for o in sorted(session.data.objects.values(), key=lambda x: x.id):
            m = session.mask(o.id, f)
            if m is not None and m.any():
                colour = np.array([c * 255.0 for c in o.colour], np.float32)
                rgb[m] = rgb[m] * 0.55 + colour * 0.45
    img = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    scale = min(1.0, float(max_size) / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"the preview of frame {f} could not be encoded")
    return buf.tobytes()
