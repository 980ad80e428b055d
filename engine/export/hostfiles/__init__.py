"""Editable shapes for each host: Nuke ``.nk``, Fusion/Resolve ``.setting``, After Effects ``.jsx``,
Flame GMask RAW setups.

:func:`write_host_script` is the one entry point (the ``roto shapes`` command and the EXR
exporter call it): give it a session (shapes are made from its mattes, see
:mod:`engine.shapes.track`) or a ready :class:`~engine.shapes.model.ShapeSet`, a host and an output
path. Formats are described in ``docs/formats/`` (``nuke-roto.md``, ``fusion-polylinemask.md``,
``ae-mask-jsx.md``, ``flame-gmask.md``). Host coordinate conventions are applied only inside each
writer. Imports nothing heavy at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from engine.shapes.model import ShapeSet
    from engine.shapes.track import ShapeOptions

#: host -> default file extension
HOSTS: dict[str, str] = {"nuke": ".nk", "fusion": ".setting", "ae": ".jsx", "flame": ".json"}
ALIASES = {"resolve": "fusion", "aftereffects": "ae", "after-effects": "ae", "nk": "nuke", "gmask": "flame"}


@dataclass
class HostScript:
    """What was written: the main file, every file (Flame: RAW setups too) and the shapes."""

    host: str
    path: Path
    files: list[Path]
    shapes: ShapeSet
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "path": str(self.path), "files": [str(p) for p in self.files],
                "shapes": len(self.shapes.shapes), "report": self.shapes.report, "notes": self.notes}


def host_of(name: str) -> str:
    h = ALIASES.get(name.strip().lower(), name.strip().lower())
    if h not in HOSTS:
        raise InputError(f"unknown host {name!r}", hint=f"Choose one of: {', '.join(HOSTS)}")
    return h


def write_host_script(source: Any, host: str, out: str | Path, *, matte_pattern: str | None = None,
                      objects: list[int | str] | None = None, shape_options: ShapeOptions | None = None,
                      frames: tuple[int, int] | None = None, progress: Any = None, cancel: Any = None,
                      **host_options: Any) -> HostScript:
    """Write ``host``'s shape file for ``source`` (a Session or a ShapeSet) to ``out``.

    ``matte_pattern`` is the delivered matte EXR sequence (``shot.####.exr``) the script should
    load next to the shapes (Nuke: Read + Cryptomatte; Fusion: a Loader per object; Flame: the
    manifest). ``host_options`` go to the writer: Nuke ``layout`` (object|shape|single),
    ``crypto_layer``; Fusion ``time_offset``, ``layer_names``; Flame ``origin``.
    """
    from engine.shapes.model import ShapeSet

    h = host_of(host)
    if isinstance(source, ShapeSet):
        shapes = source
    else:
        from engine.shapes.track import shapes_from_session

        shapes = shapes_from_session(source, objects, options=shape_options, frames=frames, progress=progress,
                                     cancel=cancel)
    # every path a script holds is absolute: it opens from any folder, not only where the command ran
    from engine.export.hostfiles.common import absolute_path

    matte_pattern = absolute_path(matte_pattern)
    if shapes.plate and absolute_path(shapes.plate) != shapes.plate:
        import dataclasses

        shapes = dataclasses.replace(shapes, plate=absolute_path(shapes.plate))
    if host_options.get("plate"):
        host_options["plate"] = absolute_path(host_options["plate"])
    out = Path(out)
    if out.is_dir():
        from engine.export.hostfiles.common import default_out_name

        out = out / default_out_name(shapes, HOSTS[h])
    files: list[Path] = []
    if h == "nuke":
        from engine.export.hostfiles.nuke import write_nuke

        files.append(write_nuke(shapes, out, matte_pattern=matte_pattern, **host_options))
    elif h == "fusion":
        from engine.export.hostfiles.fusion import write_fusion

        files.append(write_fusion(shapes, out, matte_pattern=matte_pattern, **host_options))
    elif h == "ae":
        from engine.export.hostfiles.ae import write_ae

        files.append(write_ae(shapes, out, **host_options))
    else:
        import json

        from engine.export.hostfiles.flame import write_flame

        manifest = write_flame(shapes, out, matte_pattern=matte_pattern, **host_options)
        data = json.loads(manifest.read_text(encoding="utf-8"))
        files.append(manifest)
        files.extend(manifest.with_name(e["raw"]) for e in data["shapes"])
    notes = []
    if not shapes.shapes:
        notes.append("no shapes: the objects have no mask on these frames")
    return HostScript(h, files[0], files, shapes, notes)


__all__ = ["HOSTS", "HostScript", "write_host_script", "host_of"]
