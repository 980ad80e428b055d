"""Names in deliverables: layer names every host accepts, and file-name templates.

**Layer names** (:func:`layer_names`). An object's layer (EXR ``<layer>.A``, the folder or file
token of a PNG/TIFF/DPX sequence) is its name made safe for Nuke, Flame, Resolve and file
systems: accents are dropped (``Éclair`` → ``Eclair``), anything but ASCII letters, digits and
``_`` becomes ``_`` (:func:`engine.export.masks.safe_name`, then ASCII only: Nuke turns other
characters of channel names into ``_``, which would make ``hero-1`` and ``hero_1`` clash), a name
that would be empty
becomes ``object<id>``, a name that starts with a digit or equals a layer the exporter writes
itself (``rgba``, ``matte``, ``depth``, ``N``, ``forward``, ``CryptoObject00``…) gets the prefix
``obj_``, and duplicates — compared without case, as Windows and macOS file systems do — get
``_2``, ``_3``… in object-id order. The original names travel unchanged in the Cryptomatte
manifest and in the ``roto/layers`` header attribute.

**Templates** (:class:`NameTemplate`) name the files, relative to the output folder. Tokens:
``{shot}``, ``{layer}``, ``{object}`` (the object's layer name; other layers: their own name),
``{frame}`` (the plate's frame number, 4 digits minimum; ``{frame:06d}`` for more), ``{ext}``,
and the frame forms sequence tools know: ``####``, ``@@@@``, ``%04d``. Defaults:
``{shot}.####.{ext}`` for EXR (every layer in one file) and ``{layer}/{shot}_####.{ext}`` for
PNG, TIFF and DPX (a folder per layer, files named ``shot_1001.png``); their ``####`` takes the
plate's padding (:func:`plate_padding`, :func:`frame_digits`: ``plate.########.exr`` gives 8).

Standard library only (``safe_name`` is imported lazily).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from engine.errors import InputError

#: layer names the exporter writes itself (compared without case); objects never take them
RESERVED_LAYERS = frozenset({
    "rgba", "rgb", "alpha", "r", "g", "b", "a", "y", "z", "matte", "depth", "n", "p", "normals", "forward",
    "backward", "motion", "object_id", "id", "mask", "other", "cryptoobject", "cryptomaterial", "cryptoasset",
})

DEFAULT_EXR_TEMPLATE = "{shot}.####.{ext}"
DEFAULT_SEQUENCE_TEMPLATE = "{layer}/{shot}_####.{ext}"

_TOKENS = frozenset({"shot", "layer", "object", "frame", "ext"})
_HASHES = re.compile(r"#+|@+")
_PRINTF = re.compile(r"%(0?)(\d*)d")


def plate_padding(path: str) -> int:
    """Frame digits of a sequence's path pattern: ``shot.########.exr`` → 8, ``shot.%06d.dpx`` → 6;
    0 for a movie, one image or an unpadded sequence (``shot.#.exr``, ``shot.%d.exr``)."""
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    runs = [len(m.group(0)) for m in _HASHES.finditer(name)]
    runs += [int(m.group(2)) for m in _PRINTF.finditer(name) if m.group(2)]
    best = max(runs, default=0)
    return best if best > 1 else 0


def clip_padding(info) -> int:
    """:func:`plate_padding` of an opened clip (``ClipInfo``): 0 for a movie or a single image."""
    return plate_padding(info.path) if getattr(info, "kind", "") == "sequence" else 0


def frame_digits(frames, padding: int = 0) -> int:
    """Digits of output frame numbers: the plate's ``padding`` (:func:`plate_padding`), at least 4,
    and enough for every frame of ``frames`` so the names of one sequence line up."""
    return max(4, int(padding), *(len(str(abs(int(f)))) for f in frames))


def frame_text(frame: int, digits: int) -> str:
    """A frame number as file names spell it: ``digits`` wide after the sign (``-0003``, as sequence
    readers and hosts expect), not counting it."""
    return f"{'-' if frame < 0 else ''}{abs(int(frame)):0{digits}d}"


def ascii_name(name: str) -> str:
    """``name`` with accents removed and every other non-ASCII character dropped."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if ord(ch) < 128)


def host_safe(name: str, fallback: str = "object") -> str:
    """One name made safe for EXR layers, Nuke channel names and file names: ASCII letters, digits, ``_``."""
    from engine.export.masks import safe_name

    folded = ascii_name(name).strip()
    if not re.search(r"[A-Za-z0-9]", folded):
        return fallback
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", safe_name(folded)).strip("_")
    return cleaned or fallback


def _reserved(name: str, extra: Iterable[str]) -> bool:
    low = name.lower()
    if low in RESERVED_LAYERS or low in {e.lower() for e in extra}:
        return True
    return bool(re.fullmatch(r"crypto(object|material|asset)\d*", low))


def layer_names(objects: Iterable[tuple[int, str]], reserved: Iterable[str] = ()) -> dict[int, str]:
    """``{object id: layer name}``: safe, not reserved, unique without case (see the module doc)."""
    extra = tuple(reserved)
    out: dict[int, str] = {}
    used: set[str] = set()
    for oid, name in sorted(objects, key=lambda item: item[0]):
        base = host_safe(name, f"object{oid}")
        if base[0].isdigit() or _reserved(base, extra):
            base = f"obj_{base}"
        candidate, i = base, 2
        while candidate.lower() in used or _reserved(candidate, extra):
            candidate, i = f"{base}_{i}", i + 1
        used.add(candidate.lower())
        out[oid] = candidate
    return out


# --- templates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameTemplate:
    """A file-name template (see the module doc); ``str.format`` syntax restricted to the tokens."""

    text: str

    def __post_init__(self) -> None:
        normal = self._normalised()
        fields = self._fields(normal)
        if "frame" not in fields:
            raise InputError(f"the name template {self.text!r} has no frame number",
                             hint="Add #### or {frame}, e.g. {layer}/{shot}_####.{ext}")
        object.__setattr__(self, "_normal", normal)
        object.__setattr__(self, "_field_set", frozenset(fields))

    def _normalised(self) -> str:
        text = self.text.replace("\\", "/")
        text = _HASHES.sub(lambda m: "{frame:0%dd}" % len(m.group(0)), text)
        text = _PRINTF.sub(lambda m: "{frame:0%sd}" % m.group(2) if m.group(2) else "{frame}", text)
        return text

    def _fields(self, normal: str) -> list[str]:
        fields = []
        try:
            parsed = list(string.Formatter().parse(normal))
        except ValueError as exc:
            raise InputError(f"the name template {self.text!r} is not valid ({exc})",
                             hint="Use tokens like {shot}, {layer}, {object}, {frame} or ####; "
                                  "write {{ for a brace") from None
        for _, field_name, spec, conversion in parsed:
            if field_name is None:
                continue
            if field_name not in _TOKENS or conversion:
                raise InputError(f"the name template {self.text!r} uses an unknown token {{{field_name}}}",
                                 hint="Known tokens: {shot}, {layer}, {object}, {frame}, {ext}, and ####")
            if field_name == "frame" and spec and not re.fullmatch(r"0?\d*d", spec):
                raise InputError(f"the frame format {{frame:{spec}}} in {self.text!r} is not a number format",
                                 hint="Write it like {frame:04d}")
            fields.append(field_name)
        return fields

    @property
    def per_layer(self) -> bool:
        """True when the name depends on the layer (a file per layer)."""
        return bool(self._field_set & {"layer", "object"})  # type: ignore[attr-defined]

    def render(self, *, shot: str, layer: str, object: str | None = None, frame: int, ext: str) -> str:  # noqa: A002
        """The relative file path for one layer and frame (``/``-separated, checked to stay inside the folder)."""
        normal: str = self._normal  # type: ignore[attr-defined]
        normal = normal.replace("{frame}", "{frame:04d}")
        text = normal.format(shot=shot, layer=layer, object=object if object is not None else layer,
                             frame=int(frame), ext=ext)
        path = PurePosixPath(text)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise InputError(f"the name template {self.text!r} writes outside the output folder ({text})",
                             hint="Use a relative template without '..'")
        return text

    def pattern(self, *, shot: str, layer: str, object: str | None = None, ext: str) -> str:  # noqa: A002
        """The sequence pattern with ``#`` for the frame digits (``hero/shot_####.png``)."""
        values = {"shot": shot, "layer": layer, "object": object if object is not None else layer, "ext": ext}
        out: list[str] = []
        for literal, field_name, spec, _ in string.Formatter().parse(self._normal):  # type: ignore[attr-defined]
            out.append(literal)
            if field_name is None:
                continue
            if field_name == "frame":
                m = re.fullmatch(r"0?(\d*)d", spec or "")
                out.append("#" * (int(m.group(1)) if m and m.group(1) else 4))
            else:
                out.append(format(values[field_name], spec or ""))
        return "".join(out)


#: the name the server gives the project file of a key-based or anonymous session:
#: ``<plate slug>-<10 hex digits>.roto.json`` in its state folder's ``sessions`` folder
_SERVER_PROJECT = re.compile(r".+-[0-9a-f]{10}")
#: frame tokens a plate name may carry: ``####``, ``@@@@``, ``%04d``/``%d``, ``$F4``, ``<frame>``
_FRAME_TOKENS = re.compile(r"#+|@+|%0?\d*d|\$F\d*|<f(?:rame)?>", re.IGNORECASE)
_SEPARATORS = "._- "


def _project_stem(name: str) -> str:
    for suffix in (".roto.json", ".json", ".roto"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return re.sub(r"\.[A-Za-z0-9]+$", "", name)


def is_server_project(session_path: str) -> bool:
    """True for a project file the server named itself (``<state>/sessions/<slug>-<hash>.roto.json``):
    its name is internal and never names deliverables."""
    path = PurePosixPath(str(session_path).replace("\\", "/"))
    return path.parent.name == "sessions" and bool(_SERVER_PROJECT.fullmatch(_project_stem(path.name)))


def plate_name(plate_path: str) -> str:
    """The shot name a plate gives: its sequence prefix without frame tokens, frame numbers, extension
    or separators (``/x/sh010/sh010_bg.####.exr`` → ``sh010_bg``); a plate named only by numbers
    (``/davis/blackswan/%05d.jpg``) gives its folder's name (``blackswan``). ``""`` if neither has one."""
    path = PurePosixPath(str(plate_path).replace("\\", "/"))
    for part in (path.name, path.parent.name):
        name = _FRAME_TOKENS.sub("", part)
        if part == path.name and re.search(r"\.[A-Za-z][A-Za-z0-9]{1,4}$", name):
            name = name[: name.rindex(".")]  # the extension (a folder name keeps its dots)
        name = name.strip(_SEPARATORS)
        name = re.sub(r"(^|[._\- ])\d+$", "", name).strip(_SEPARATORS)  # a frame number: plate.1001
        name = _FRAME_TOKENS.sub("", host_safe(name, ""))
        if re.search(r"[A-Za-z]", name):
            return name
    return ""


def shot_name(session_path: str | None, plate_path: str | None) -> str:
    """The default ``{shot}``: the project file's name without ``.roto.json`` when a user named it
    (``sh010.roto.json`` → ``sh010``), else the plate's name (:func:`plate_name`), else ``shot``. A
    project file the server named itself (:func:`is_server_project`) never gives the name."""
    if session_path and not is_server_project(session_path):
        stem = _project_stem(PurePosixPath(str(session_path).replace("\\", "/")).name)
        name = host_safe(_FRAME_TOKENS.sub("", stem), "")
        if name:
            return name
    if plate_path:
        name = plate_name(plate_path)
        if name:
            return name
    return "shot"
