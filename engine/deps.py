"""Optional dependencies: import on demand, fail with a sentence naming what to install.

Standard library only. A missing optional package disables the one feature that needs it;
the rest of the engine keeps working.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from engine.errors import DependencyMissing

#: import name -> (pip requirement, extra of this project that installs it)
_KNOWN: dict[str, tuple[str, str | None]] = {
    "numpy": ("numpy", None),
    "scipy": ("scipy", None),
    "cv2": ("opencv-python-headless", None),
    "PIL": ("Pillow", None),
    "OpenEXR": ("OpenEXR", None),
    "OpenImageIO": ("OpenImageIO", None),
    "PyOpenColorIO": ("opencolorio", None),
    "av": ("av", None),
    "rich": ("rich", None),
    "pydantic": ("pydantic", None),
    "torch": ("torch==2.13.0", "sam2"),
    "sam2": ("sam2", "sam2"),
    "sam3": ("sam3", "sam3"),
    "depth_anything_3": ("depth-anything-3", "depth"),
    "pymatting": ("pymatting", "matting"),
    "fastapi": ("fastapi", "server"),
    "uvicorn": ("uvicorn", "server"),
    "ray": ("ray", "cluster"),
}

DIST_NAME = "ultimate-rotoscopy"


def install_hint(module: str) -> str:
    """The sentence telling the user how to get ``module``."""
    req, extra = _KNOWN.get(module, (module, None))
    if module == "depth_anything_3":
        return ("Install it with: pip install --no-deps depth-anything-3==0.1.1 && "
                f"pip install '{DIST_NAME}[depth]' (its declared dependencies would downgrade numpy).")
    if extra:
        return f"Install it with: pip install '{DIST_NAME}[{extra}]' (or pip install {req})."
    return f"Install it with: pip install {req} (it is part of the base install: re-run `make setup`)."


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`DependencyMissing` saying what needs it and how to get it.

    >>> np = require("numpy", "reading image sequences")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # ModuleNotFoundError or a broken binary
        raise DependencyMissing(
            f"{purpose} needs the Python package '{module}', which could not be imported ({exc})",
            hint=install_hint(module),
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (imports it)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
