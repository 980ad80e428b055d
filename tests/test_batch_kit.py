"""Helpers for the batch tests (tiny synthetic plates, job files, output fingerprints) and their own checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

W, H, N = 128, 80, 12


def make_plate(folder: Path, frames: int = N, name: str = "plate", seed: int = 7, width: int = W,
               height: int = H) -> tuple[str, str]:
    """A textured blob plate as an EXR sequence and its first-frame mask PNG; returns (pattern, mask)."""
    import cv2

    from engine.media.synthetic import generate, write_exr_sequence

    clip = generate(width, height, frames, start=1001, seed=seed)
    pattern = write_exr_sequence(clip, folder / name, name=name)
    mask = folder / f"{name}_mask.png"
    cv2.imwrite(str(mask), (clip[0].mask * 255).astype(np.uint8))
    return pattern, str(mask)


def shot(name: str, pattern: str, mask: str, out: Path, **kw) -> dict:
    d = {"name": name, "input": pattern, "mask": mask, "stages": ["track", "matte", "export"], "out": str(out),
         "matte": {"chunk": 4, "warmup": 1}, "export": {"chunk": 3}}
    d.update(kw)
    return d


def write_job(path: Path, shots: list[dict], **top) -> Path:
    path.write_text(json.dumps({"shots": shots, **top}), encoding="utf-8")
    return path


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every output file (deliverables, alpha, depth), by relative path; journals, project
    files and their backups are left out (they carry times and prompt ids)."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file() or ".roto-batch" in p.parts or p.name.endswith((".json", ".bak")):
            continue
        out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def results(session_file: Path) -> dict:
    """The session's per-frame results (RLE masks, confidence, occlusion) from its project file."""
    doc = json.loads(Path(session_file).read_text())
    return {k: v for k, v in doc.items() if k in ("results", "keyframes")}


def test_fingerprint_ignores_journals_and_sessions(tmp_path):
    (tmp_path / ".roto-batch").mkdir()
    (tmp_path / ".roto-batch" / "journal.main.jsonl").write_text("{}")
    (tmp_path / "s.roto.json").write_text("{}")
    (tmp_path / "a.1001.exr").write_bytes(b"x")
    assert list(fingerprint(tmp_path)) == ["a.1001.exr"]
