"""The models the engine knows: where the official weights live, how big they are, their licence.

Each :class:`ModelEntry` names one weights file at its **official** download location (Meta's
``dl.fbaipublicfiles.com`` for SAM 2.1, the authors' Hugging Face repositories for SAM 3 and
Depth Anything 3, the authors' GitHub release for MatAnyone). None of these publishers prints a
SHA-256 next to the file, so ``sha256`` is ``None`` here and the manager records the digest of
the first complete download and verifies every later copy against it (trust on first use); an
entry whose publisher does print one gets it here and is checked from the first byte.

Sizes are the published approximate sizes (``approx=True``): they are shown to the user and
used as a plausibility check, never as a checksum.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1_000_000


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable weights file."""

    name: str  # what users type: `roto models fetch sam2.1-tiny`
    family: str  # sam2, sam3, depth, matting
    title: str
    url: str  # official location
    filename: str  # stored as <models dir>/<name>/<filename>
    size: int | None = None  # bytes (approximate unless approx=False)
    approx: bool = True
    sha256: str | None = None  # published digest, when the publisher prints one
    licence: str = ""
    commercial: bool = True  # False: research / non-commercial use only
    licence_url: str = ""
    gated: bool = False  # needs an account that accepted the terms (Hugging Face token)
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # backend-specific (e.g. SAM 2 config name)

    @property
    def size_text(self) -> str:
        if not self.size:
            return "?"
        prefix = "~" if self.approx else ""
        if self.size >= 1000 * MB:
            return f"{prefix}{self.size / (1000 * MB):.2f} GB"
        return f"{prefix}{self.size / MB:.0f} MB"


_SAM2_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_SAM2_LICENCE = "https://github.com/facebookresearch/sam2/blob/main/LICENSE"
_HF = "https://huggingface.co/"


def _sam2(size_key: str, file_key: str, cfg: str, mb: int, params: str) -> ModelEntry:
    return ModelEntry(
        name=f"sam2.1-{size_key}", family="sam2", title=f"SAM 2.1 Hiera {size_key.replace('_', '-')} ({params})",
        url=f"{_SAM2_BASE}sam2.1_hiera_{file_key}.pt", filename=f"sam2.1_hiera_{file_key}.pt", size=mb * MB,
        licence="Apache-2.0", licence_url=_SAM2_LICENCE,
        extra={"config": f"configs/sam2.1/sam2.1_hiera_{cfg}.yaml"},
    )


CATALOGUE: tuple[ModelEntry, ...] = (
    _sam2("tiny", "tiny", "t", 156, "38.9M parameters"),
    _sam2("small", "small", "s", 185, "46M parameters"),
    _sam2("base_plus", "base_plus", "b+", 324, "80.8M parameters"),
    _sam2("large", "large", "l", 898, "224.4M parameters"),
    ModelEntry(
        name="sam3", family="sam3", title="SAM 3 (text and exemplar prompts, 848M parameters)",
        url=_HF + "facebook/sam3/resolve/main/sam3.pt", filename="sam3.pt", size=3450 * MB,
        licence="SAM License (Meta)", licence_url=_HF + "facebook/sam3/blob/main/LICENSE", gated=True,
        notes="Gated on Hugging Face: accept the terms on the model page, then set HF_TOKEN before fetching.",
    ),
    ModelEntry(
        name="da3-small", family="depth", title="Depth Anything 3 small (34.3M parameters)",
        url=_HF + "depth-anything/DA3-SMALL/resolve/main/model.safetensors", filename="model.safetensors",
        size=138 * MB, licence="Apache-2.0", licence_url=_HF + "depth-anything/DA3-SMALL",
        extra={"preset": "da3-small"},
    ),
    ModelEntry(
        name="da3-base", family="depth", title="Depth Anything 3 base (0.1B parameters)",
        url=_HF + "depth-anything/DA3-BASE/resolve/main/model.safetensors", filename="model.safetensors",
        size=540 * MB, licence="Apache-2.0", licence_url=_HF + "depth-anything/DA3-BASE",
        extra={"preset": "da3-base"},
    ),
    ModelEntry(
        name="da3-large", family="depth", title="Depth Anything 3 large (0.4B parameters)",
        url=_HF + "depth-anything/DA3-LARGE/resolve/main/model.safetensors", filename="model.safetensors",
        size=1650 * MB, licence="CC BY-NC 4.0", commercial=False, licence_url=_HF + "depth-anything/DA3-LARGE",
        notes="Non-commercial use only.", extra={"preset": "da3-large"},
    ),
    ModelEntry(
        name="da3-giant", family="depth", title="Depth Anything 3 giant (1B parameters)",
        url=_HF + "depth-anything/DA3-GIANT/resolve/main/model.safetensors", filename="model.safetensors",
        size=4500 * MB, licence="CC BY-NC 4.0", commercial=False, licence_url=_HF + "depth-anything/DA3-GIANT",
        notes="Non-commercial use only.", extra={"preset": "da3-giant"},
    ),
    ModelEntry(
        name="matanyone", family="matting", title="MatAnyone video matting v1.0.0",
        url="https://github.com/pq-yang/MatAnyone/releases/download/v1.0.0/matanyone.pth",
        filename="matanyone.pth", size=141 * MB, licence="S-Lab License 1.0", commercial=False,
        licence_url="https://github.com/pq-yang/MatAnyone/blob/main/LICENSE",
        notes="Non-commercial use only; the model code is installed from the authors' repository.",
    ),
)

_BY_NAME = {m.name: m for m in CATALOGUE}
#: other spellings people type
ALIASES = {
    "sam2-tiny": "sam2.1-tiny", "sam2-small": "sam2.1-small", "sam2-base_plus": "sam2.1-base_plus",
    "sam2-base-plus": "sam2.1-base_plus", "sam2.1-base-plus": "sam2.1-base_plus", "sam2-large": "sam2.1-large",
    "sam2.1_hiera_tiny": "sam2.1-tiny", "sam2.1_hiera_small": "sam2.1-small",
    "sam2.1_hiera_base_plus": "sam2.1-base_plus", "sam2.1_hiera_large": "sam2.1-large",
}


def names() -> list[str]:
    return [m.name for m in CATALOGUE]


def get(name: str) -> ModelEntry:
    """The entry for ``name`` (aliases accepted); raises :class:`~engine.errors.ModelError` otherwise."""
    key = name.strip()
    key = ALIASES.get(key, ALIASES.get(key.lower(), key.lower() if key.lower() in _BY_NAME else key))
    entry = _BY_NAME.get(key)
    if entry is None:
        from engine.errors import ModelError

        raise ModelError(f"there is no model named {name!r}",
                         hint="Known models: " + ", ".join(names()) + " (see `roto models list`)")
    return entry


def family(name: str) -> list[ModelEntry]:
    return [m for m in CATALOGUE if m.family == name]
