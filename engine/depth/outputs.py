"""What ``roto depth`` writes: per-frame float EXRs, PLY point clouds, the Nuke camera.

* ``<out>/<prefix>.<frame>.exr`` — float32, ZIP, single part: ``depth.Z`` in the chosen
  convention (``distance`` by default; ``z``; ``inverse_z`` = Nuke 1/Z), ``N.X N.Y N.Z`` with
  ``normals`` (camera space, ``+Y`` up, ``+Z`` towards the viewer), ``depth.confidence`` with
  ``confidence``. Header: the plate's windows, fps, timecode, ``roto/depthConvention``,
  ``roto/depthKind`` (metric/relative/affine), ``roto/depthModel``, ``roto/K`` and ``roto/w2c``
  (JSON; OpenCV conventions) and ``roto/cameraSource`` (model / given / assumed).
* ``<out>/points/<prefix>.<frame>.ply`` with ``points`` — binary PLY with colour (and normals),
  in the shot's world frame when the model gives cameras, else in camera space; Nuke axes
  (Y up, cameras look down -Z). With cameras, also ``<out>/points/<prefix>_world.<first>-<last>.ply``:
  the whole range merged in one world frame, thinned to at most ``max_points``.
* ``<out>/camera.nk`` + ``<out>/camera.chan`` when the model gives cameras (animated ``Camera2``,
  see :mod:`engine.export.camera`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.depth.base import DepthOut
from engine.export.naming import clip_padding, frame_digits, frame_text
from engine.ops.camera_geometry import CV_TO_GL, default_intrinsics


@dataclass
class WrittenDepth:
    pattern: str = ""
    exr: list[str] = field(default_factory=list)
    ply: list[str] = field(default_factory=list)
    world_ply: str | None = None
    camera_nk: str | None = None
    camera_chan: str | None = None
    points_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "exr": len(self.exr), "ply": len(self.ply), "world_ply": self.world_ply,
                "camera_nk": self.camera_nk, "camera_chan": self.camera_chan, "points": self.points_total}


def _pad(clip: Any, frames: list[int]) -> int:
    """Frame digits of the file names: the plate's padding, at least 4, enough for every frame."""
    info = getattr(clip, "info", None)
    return frame_digits(frames, clip_padding(info) if info is not None else 0)


@dataclass
class MatteSpec:
    """Depth mattes written into each frame's EXR (:mod:`engine.ops.depth_matte`).

    Values are in the units of ``depth.Z`` (camera distance or planar Z; planar Z when the file
    holds Nuke 1/Z). ``split``: ``(near_cut, far_cut)`` or ``"auto"`` (33rd/66th percentile of the
    *first* frame, then held for the shot so the cuts do not flicker) → ``fg.A mg.A bg.A``;
    ``range``: ``(near, far)`` → ``range.A``; ``falloff`` for both (None: 10 % of the cut gap for
    the split, 0 for the range); ``coverage(frame)`` → an object matte (float (H, W)) every matte
    is intersected with (object ∩ depth range), or None.
    """

    split: Any = None
    range: Any = None
    falloff: float | None = None
    coverage: Any = None
    object_name: str = ""
    _cuts: tuple[float, float] | None = None

    def describe(self) -> dict[str, Any]:
        return {"split": list(self._cuts) if self._cuts else self.split, "range": self.range, "falloff": self.falloff,
                "object": self.object_name or None}

    def layers(self, frame: int, z: np.ndarray, K: np.ndarray, convention: str) -> list[Any]:
        from engine.export.aovs import COLOUR, Layer
        from engine.ops.depth_convention import from_z
        from engine.ops.depth_matte import auto_cuts, combine, range_matte, split_planes

        d = from_z(z, "distance" if convention == "distance" else "z", K)
        cov = None if self.coverage is None else self.coverage(frame)
        out = []

        def add(name: str, m: np.ndarray) -> None:
            if cov is not None:
                m = combine(cov, m, "intersect")
            out.append(Layer(name, ("A",), np.asarray(m, np.float32)[:, :, None], COLOUR, "depth-mattes", name))

        if self.split is not None:
            if self._cuts is None:
                self._cuts = auto_cuts(d) if self.split == "auto" else (float(self.split[0]), float(self.split[1]))
            sp = split_planes(d, *self._cuts, falloff=self.falloff)
            add("fg", sp.foreground)
            add("mg", sp.midground)
            add("bg", sp.background)
        if self.range is not None:
            add("range", range_matte(d, float(self.range[0]), float(self.range[1]), self.falloff or 0.0))
        return out


class DepthWriter:
    """Writes one frame at a time (:meth:`write`), then the shot-wide files (:meth:`finish`)."""

    def __init__(self, clip: Any, out_dir: str | Path, frames: list[int], *, convention: str = "distance",
                 normals: bool = False, points: bool = False, confidence: bool = False, prefix: str = "depth",
                 model: str = "", kind: str = "", camera_source: str = "model", points_step: int = 2,
                 max_points: int = 2_000_000, session_id: str = "", mattes: MatteSpec | None = None,
                 digits: int = 0) -> None:
        from engine.ops.depth_convention import normalise_convention

        self.clip = clip
        self.out = Path(out_dir)
        self.frames = list(frames)
        self.convention = normalise_convention(convention)
        self.normals = normals
        self.points = points
        self.confidence = confidence
        self.prefix = prefix
        self.model, self.kind, self.camera_source = model, kind, camera_source
        self.points_step = max(1, int(points_step))
        self.max_points = int(max_points)
        self.session_id = session_id
        self.mattes = mattes
        self.pad = max(int(digits), _pad(clip, self.frames))  # digits: the session's, so mattes and depth line up
        self.written = WrittenDepth(self.pattern())
        self._world: list[Any] = []
        self._cams: list[DepthOut] = []
        h, w = clip.shape
        self.shape = (h, w)

    def exr_path(self, frame: int) -> Path:
        return self.out / f"{self.prefix}.{frame_text(frame, self.pad)}.exr"

    def pattern(self) -> str:
        return str(self.out / f"{self.prefix}.{'#' * self.pad}.exr")

    def _meta(self, frame: int) -> Any:
        from engine import __version__
        from engine.errors import InputError
        from engine.export.aovs import FrameMeta, timecode_add
        from engine.media.types import Rect

        info = self.clip.info
        h, w = self.shape
        rect = Rect(0, 0, w, h)
        tc = None
        if info.timecode:
            try:
                tc = timecode_add(info.timecode, frame - info.first, info.fps,
                                  bool(info.metadata.get("timecode_drop_frame")))
            except InputError:
                tc = None
        drop = bool(info.metadata.get("timecode_drop_frame"))
        return FrameMeta(frame=frame, fps=info.fps, timecode=tc, drop_frame=drop,
                         colourspace=info.colourspace or "", display_window=rect, data_window=rect,
                         pixel_aspect=float(info.pixel_aspect or 1.0), session_id=self.session_id, version=__version__,
                         shot=Path(info.path).stem.split(".")[0], first=self.frames[0] if self.frames else frame,
                         last=self.frames[-1] if self.frames else frame)

    def write(self, out: DepthOut) -> None:
        from engine.export.aovs import DATA, Layer
        from engine.export.exr import header_attributes, write_exr
        from engine.ops.depth_convention import from_z
        from engine.ops.normals import normals_from_depth

        frame = int(out.frame)  # type: ignore[arg-type]
        z = np.asarray(out.depth, np.float32)
        K = out.intrinsics if out.intrinsics is not None else default_intrinsics(self.shape)
        layers = [Layer("depth", ("Z",), from_z(z, self.convention, K)[:, :, None], DATA, "depth", "depth")]
        n_gl = None
        if self.normals or self.points:
            n_gl = out.normals if out.normals is not None else normals_from_depth(z, K, convention="gl")
        if self.confidence and out.confidence is not None:
            layers.append(Layer("depth", ("confidence",), np.asarray(out.confidence, np.float32)[:, :, None], DATA,
                                "depth", "depth"))
        if self.normals:
            layers.append(Layer("N", ("X", "Y", "Z"), np.asarray(n_gl, np.float32), DATA, "normals", "N"))
        if self.mattes is not None:
            layers += self.mattes.layers(frame, z, K, self.convention)
        meta = self._meta(frame)
        extra = {"roto/depthConvention": self.convention, "roto/depthKind": self.kind, "roto/depthModel": self.model,
                 "roto/cameraSource": self.camera_source if out.intrinsics is not None else "assumed",
                 "roto/K": json.dumps(np.asarray(K, np.float64).round(9).tolist())}
        if out.extrinsics is not None:
            extra["roto/w2c"] = json.dumps(np.asarray(out.extrinsics, np.float64)[:3].round(12).tolist())
        if self.normals:
            extra["roto/normals"] = "camera space: +X right, +Y up, +Z towards the viewer"
        if self.mattes is not None:
            extra["roto/depthMattes"] = json.dumps(self.mattes.describe())
        attrs = header_attributes(meta, colour_layers=False, extra=extra)
        path = self.exr_path(frame)
        write_exr(path, layers, meta, attributes=attrs)
        self.written.exr.append(str(path))
        if out.extrinsics is not None:
            self._cams.append(DepthOut(np.zeros((0, 0), np.float32), None, np.asarray(K, np.float64),
                                       out.extrinsics, None, frame))
        if self.points:
            self._write_points(frame, z, K, out, n_gl)

    def _write_points(self, frame: int, z: np.ndarray, K: np.ndarray, out: DepthOut, n_gl: Any) -> None:
        from engine.export.ply import write_ply
        from engine.ops.pointcloud import point_cloud

        rgb = self.clip.read_uint8(frame)
        gl = np.eye(4)
        gl[:3, :3] = CV_TO_GL
        n_cv = None if n_gl is None else np.asarray(n_gl, np.float32) @ CV_TO_GL.T.astype(np.float32)  # GL -> OpenCV
        world = out.extrinsics is not None
        cloud = point_cloud(z, K, rgb=rgb, w2c=out.extrinsics if world else None, normals=n_cv,
                            world_transform=gl, frame=frame)
        space = "shot world frame" if world else "camera space"
        path = self.out / "points" / f"{self.prefix}.{frame_text(frame, self.pad)}.ply"
        write_ply(path, cloud.points, cloud.colours, cloud.normals,
                  comments=[f"Ultimate Rotoscopy depth points, frame {frame}", f"{space}, Y up, -Z forward (Nuke axes)",
                            f"units: {'metres' if self.kind == 'metric' else 'relative (consistent over the shot)'}",
                            f"model: {self.model}"])
        self.written.ply.append(str(path))
        self.written.points_total += len(cloud)
        if world and len(self.frames) > 1:
            budget = max(1, self.max_points // max(1, len(self.frames)))
            step = self.points_step
            while (self.shape[0] // step) * (self.shape[1] // step) > 4 * budget:
                step *= 2
            keep = np.zeros(self.shape, bool)
            keep[::step, ::step] = True
            sel = keep.reshape(-1)[cloud.pixels]
            if out.confidence is not None and cloud.pixels is not None and cloud.pixels.size:
                c = np.asarray(out.confidence).reshape(-1)[cloud.pixels]
                sel &= c >= np.quantile(c, 0.2)  # the least confident fifth stays out of the merged cloud
            idx = np.flatnonzero(sel)
            if idx.size > budget:
                idx = idx[np.linspace(0, idx.size - 1, budget).astype(np.int64)]
            self._world.append((cloud.points[idx], cloud.colours[idx] if cloud.colours is not None else None,
                                cloud.normals[idx] if cloud.normals is not None else None))

    def finish(self) -> WrittenDepth:
        from engine.export.camera import CameraTrack, write_chan, write_nuke_camera
        from engine.export.ply import write_ply

        if self._world:
            P = np.concatenate([w[0] for w in self._world])
            C = None if any(w[1] is None for w in self._world) else np.concatenate([w[1] for w in self._world])
            N = None if any(w[2] is None for w in self._world) else np.concatenate([w[2] for w in self._world])
            f0, f1 = self.frames[0], self.frames[-1]
            path = self.out / "points" / f"{self.prefix}_world.{f0}-{f1}.ply"
            write_ply(path, P, C, N, comments=[
                f"Ultimate Rotoscopy depth points, frames {f0}-{f1} merged",
                "shot world frame (first frame's camera at the origin), Y up, -Z forward", f"model: {self.model}"])
            self.written.world_ply = str(path)
        if self._cams:
            h, w = self.shape
            track = CameraTrack.from_outputs(self._cams, w, h, units="metres" if self.kind == "metric" else "relative")
            label = f"roto depth: {self.model}" + (" (assumed lens)" if track.assumed_intrinsics else "")
            self.written.camera_nk = str(write_nuke_camera(self.out / "camera.nk", track, label=label))
            self.written.camera_chan = str(write_chan(self.out / "camera.chan", track))
        return self.written
