"""Deliverables: what a facility receives from a session.

* :mod:`engine.export.deliver` — the job: session → one file per frame (EXR) or per layer and
  frame (DPX, PNG, TIFF); resumable, atomic per frame, with progress and cancellation.
* :mod:`engine.export.aovs` — the layer providers: which AOVs a session has on a frame
  (plate, per-object mattes, combined matte, Cryptomatte, object id, motion vectors; depth and
  normals when a session provides them).
* :mod:`engine.export.exr`, :mod:`~engine.export.dpx`, :mod:`~engine.export.images` — writers.
* :mod:`engine.export.cryptomatte` — MurmurHash3, manifest, rank encoding and decoding.
* :mod:`engine.export.naming` — layer names hosts accept and file-name templates.
* :mod:`engine.export.masks` — the simple 8-bit PNG matte writer used by ``roto track``.

Formats written are described in ``docs/formats/exr-aovs.md`` and ``docs/formats/dpx.md``.
This package imports nothing heavy at load (``import engine.export`` stays standard-library only).
"""
