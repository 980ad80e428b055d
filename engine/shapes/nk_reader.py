"""Read Roto / RotoPaint shapes from Nuke ``.nk`` scripts (existing roto as prompts or keyframes).

A ``.nk`` script is Tcl: commands (``Read {…}``, ``set N [stack 0]``, ``push $N``, ``end_group``…)
whose node bodies are knob commands. This reader splits the script into nodes (following
``Group``/``end_group`` nesting, so nodes inside groups are found too), and parses the
``curves`` knob of ``Roto`` and ``RotoPaint`` nodes:

``{{v …} {f …} {n {layer Root {f …} {t …} {a …} <curvegroup|cubiccurve|layer>…}}}``

* ``{curvegroup NAME FLAGS bezier {{cc {f …} {p|px …}} <feather>} {t|tx …} {a attrs…}}`` — a
  shape. ``<feather>`` is ``idem`` (the feather curve is the shape itself) or a second ``cc``
  whose point positions are offsets from the shape's points.
* Control points are triples of (x, y) entries: left tangent (relative), position, right
  tangent (relative), in Nuke's bottom-left coordinates.
* ``{px FRAME {x y} …}`` — one key; ``{px {F1 F2 …} {{x1 x2 …} {y1 y2 …}} …}`` — several keys,
  a channel with one value being constant; a value may itself be a list whose first element
  is the value (``{{v -}}``, ``{{v slope 1 0 1}}``); ``{p …}`` — no key at all;
  ``{=expression cached}`` — an expression-driven value, read as its cached number; ``{}`` —
  zero. Floats are decimals or ``x`` + 8 hex digits (IEEE float32 bits).
* Open splines (curvegroup flag ``0x100000``) carry a per-point attribute list ``{a …}`` in their
  entries; it is skipped.
* Attributes used: ``ltt``/``ltn``/``ltm`` (lifetime: 0 all frames, 1 up to ``ltm``, 2 single
  frame ``ltn``, 3 from ``ltn``, 4 ``ltn``–``ltm``) and ``fx``/``fy`` (feather, px).

Between keys shapes are interpolated linearly (Nuke's default is smooth; keys themselves are
exact). Paint strokes (``cubiccurve``) and open curves are listed but not rasterised; shape
and layer transforms other than their centre are not applied (noted in ``notes``).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.shapes.model import BezierKey, Shape

__all__ = ["NkNode", "NukeShape", "NukeScript", "read_nk", "parse_nk", "tcl_list", "nk_float"]


# --- Tcl words ---------------------------------------------------------------------------------


def _skip_braced(s: str, i: int) -> int:
    """Index just after the ``}`` closing the ``{`` at ``s[i]``."""
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise InputError("a brace is never closed in the script")


def _skip_quoted(s: str, i: int) -> int:
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise InputError("a quote is never closed in the script")


def _skip_bracketed(s: str, i: int) -> int:
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            i = _skip_braced(s, i)
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _commands(s: str) -> list[list[str]]:
    """Split Tcl text into commands, each a list of raw words (braced words keep their braces)."""
    out: list[list[str]] = []
    words: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\r":
            i += 1
            continue
        if c == "\\" and i + 1 < n and s[i + 1] == "\n":
            i += 2
            continue
        if c in "\n;":
            if words:
                out.append(words)
                words = []
            i += 1
            continue
        if c == "#" and not words:
            while i < n and s[i] != "\n":
                i += 1
            continue
        start = i
        if c == "{":
            i = _skip_braced(s, i)
        elif c == '"':
            i = _skip_quoted(s, i)
        else:
            while i < n and s[i] not in " \t\r\n;":
                if s[i] == "\\":
                    i += 2
                    continue
                if s[i] == "[":
                    i = _skip_bracketed(s, i)
                    continue
                if s[i] == "{":  # a brace glued to a word (rare): take it whole
                    i = _skip_braced(s, i)
                    continue
                i += 1
        words.append(s[start:i])
    if words:
        out.append(words)
    return out


def _unwrap(word: str) -> str:
    if len(word) >= 2 and word[0] == "{" and word[-1] == "}":
        return word[1:-1]
    if len(word) >= 2 and word[0] == '"' and word[-1] == '"':
        return re.sub(r"\\(.)", r"\1", word[1:-1])
    return word


def tcl_list(s: str) -> list[str]:
    """The elements of a Tcl list (braced elements without their braces)."""
    items: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c == "{":
            i = _skip_braced(s, i)
            items.append(s[start + 1:i - 1])
        elif c == '"':
            i = _skip_quoted(s, i)
            items.append(s[start + 1:i - 1])
        else:
            while i < n and not s[i].isspace():
                if s[i] == "\\":
                    i += 1
                i += 1
            items.append(s[start:i])
    return items


_HEX = re.compile(r"^x[0-9a-fA-F]{8}$")


def nk_float(tok: str) -> float | None:
    """A number as Nuke writes it (``x3f800000`` IEEE float32 bits, or a decimal), else None."""
    t = tok.strip()
    if _HEX.match(t):
        return float(struct.unpack(">f", bytes.fromhex(t[1:]))[0])
    try:
        return float(t)
    except ValueError:
        return None


# --- nodes ----------------------------------------------------------------------------------


@dataclass
class NkNode:
    cls: str
    knobs: dict[str, str]  # knob -> raw value text (first word, braces/quotes removed)
    group: str = ""  # path of enclosing groups, e.g. "perspective_lines"

    @property
    def name(self) -> str:
        return self.knobs.get("name", self.cls)

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}" if self.group else self.name


def parse_nk(text: str) -> list[NkNode]:
    """Every node of a script (group members included, with their group path)."""
    nodes: list[NkNode] = []
    groups: list[str] = []
    for words in _commands(text):
        head = words[0]
        if head == "end_group":
            if groups:
                groups.pop()
            continue
        if head in ("set", "push", "version", "define_window_layout_xml", "add_layer") or head.startswith("#"):
            continue
        if head == "clone" and len(words) >= 3:
            words = [words[1].lstrip("$"), words[2]]
            head = "clone"
        if len(words) < 2 or not words[-1].startswith("{"):
            continue
        body = _unwrap(words[-1])
        knobs: dict[str, str] = {}
        for kw in _commands(body):
            if len(kw) >= 2:
                knobs.setdefault(kw[0], _unwrap(kw[1]))
            elif kw:
                knobs.setdefault(kw[0], "")
        node = NkNode(head, knobs, ".".join(groups))
        nodes.append(node)
        if head in ("Group", "LiveGroup") or knobs.get("__group__"):
            groups.append(node.name)
    return nodes


# --- roto curves ----------------------------------------------------------------------------


@dataclass
class NukeShape:
    """One Roto shape as written in the script (Nuke coordinates, bottom-left origin)."""

    node: str
    name: str
    closed: bool
    frames: list[int] | None  # None: not keyed (static)
    points: np.ndarray  # (K, N, 2)
    left: np.ndarray  # (K, N, 2) relative
    right: np.ndarray  # (K, N, 2) relative
    feather_offsets: np.ndarray | None = None  # (K, N, 2): feather point - shape point; None = idem
    attrs: dict[str, float] = field(default_factory=dict)
    expressions: int = 0
    kind: str = "bezier"  # bezier | stroke
    notes: list[str] = field(default_factory=list)
    format_centre: tuple[float, float] | None = None  # the node's root layer centre (half its format)

    @property
    def n_points(self) -> int:
        return int(self.points.shape[1])

    @property
    def feather(self) -> float:
        fx, fy = self.attrs.get("fx"), self.attrs.get("fy")
        vals = [v for v in (fx, fy) if v is not None]
        return float(np.mean(vals)) if vals else 0.0

    def lifetime(self, lo: int, hi: int) -> tuple[int, int]:
        """The frames (within ``lo``..``hi``) where the shape exists."""
        ltt = int(self.attrs.get("ltt", 0) or 0)
        ltn = int(round(self.attrs.get("ltn", lo)))
        ltm = int(round(self.attrs.get("ltm", hi)))
        if ltt == 1:
            return lo, min(hi, ltm)
        if ltt == 2:
            return ltn, ltn
        if ltt == 3:
            return max(lo, ltn), hi
        if ltt == 4:
            return max(lo, min(ltn, ltm)), min(hi, max(ltn, ltm))
        return lo, hi

    def to_shape(self, height: float, lo: int, hi: int, *, object_id: int = 0, object_name: str = "") -> Shape:
        """The engine shape (top-left coordinates; the centre-line and feather of the engine's model)."""
        from engine.export.hostfiles.common import offset_key

        flip = np.array([1.0, -1.0])
        frames = self.frames if self.frames else [lo]
        first, last = self.lifetime(lo, hi)
        extra = 0.0
        if self.feather_offsets is not None and self.n_points >= 3:
            extra = _feather_push(self)
        feather = self.feather + extra
        keys = {}
        for i, f in enumerate(frames):
            pts = np.stack([self.points[i, :, 0], height - self.points[i, :, 1]], axis=1)
            k = BezierKey(pts, self.left[i] * flip, self.right[i] * flip, np.zeros(self.n_points, bool))
            if feather != 0 and self.n_points >= 3:
                k = offset_key(k, 0.5 * feather)
            keys[int(f)] = k
        s = Shape(self.name, keys, first, last, hole=False, feather=abs(feather), object_id=object_id,
                  object_name=object_name or self.node, notes=list(self.notes))
        return s


def _feather_push(shape: NukeShape) -> float:
    """Mean distance the feather curve lies outside the shape (negative: inside), first key."""
    from engine.export.hostfiles.common import key_orientation

    k = BezierKey(shape.points[0], shape.left[0], shape.right[0], np.zeros(shape.n_points, bool))
    # Nuke coordinates are y up: orientation flips relative to the engine's y-down screen
    sign = -key_orientation(k)
    d = np.roll(shape.points[0], -1, 0) - np.roll(shape.points[0], 1, 0)
    n = np.stack([d[:, 1], -d[:, 0]], axis=1) * sign
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    assert shape.feather_offsets is not None
    return float((shape.feather_offsets[0] * n).sum(axis=1).mean())


def _channel(text: str, nkeys: int, counter: list[int]) -> list[float]:
    """Per-key values of one channel (see the module doc for the forms)."""
    items = tcl_list(text)
    if not items:
        return [0.0] * nkeys
    if items[0].startswith("="):
        counter[0] += 1
        nums = [nk_float(t) for t in items[1:]]
        nums = [v for v in nums if v is not None]
        return [nums[-1] if nums else 0.0] * nkeys
    vals = [nk_float(t) for t in items]
    if all(v is not None for v in vals):
        if len(vals) == nkeys:
            return [float(v) for v in vals]  # type: ignore[arg-type]
        if len(vals) == 1:
            return [float(vals[0])] * nkeys  # type: ignore[arg-type]
        # one key written with extra data: value first
        if nkeys == 1:
            return [float(vals[0])]  # type: ignore[arg-type]
        raise InputError(f"a roto channel has {len(vals)} values for {nkeys} keys")
    if any(" " in it or "\t" in it or "\n" in it or it == "" for it in items):
        # each item is a key written as a list: its first element is the value
        per = [_channel(it, 1, counter)[0] for it in items]
        if len(per) == nkeys:
            return per
        if len(per) == 1:
            return per * nkeys
        raise InputError(f"a roto channel has {len(per)} keyed values for {nkeys} keys")
    first = nk_float(items[0])  # a single key written as "value flags…"
    return [first if first is not None else 0.0] * nkeys


def _is_attr_block(text: str) -> bool:
    items = tcl_list(text)
    while len(items) == 1 and items[0] != text:
        text = items[0]
        items = tcl_list(text)
    return bool(items) and items[0] == "a"


def _parse_points(body: list[str], counter: list[int]) -> tuple[list[int] | None, np.ndarray, int]:
    """``p …``/``px …`` → (frames or None, values (K, E, 2), extra dims)."""
    kind = body[0]
    if kind == "px":
        key_vals = [nk_float(t) for t in tcl_list(body[1])]
        frames = [int(round(v)) for v in key_vals if v is not None]
        entries = body[2:]
    else:
        frames = None
        entries = body[1:]
    nkeys = len(frames) if frames else 1
    out = np.zeros((nkeys, len(entries), 2))
    for e_i, e in enumerate(entries):
        chans = [c for c in tcl_list(e) if not _is_attr_block(c)]  # open splines: per-point {a …}
        for c_i, ch in enumerate(chans[:2]):
            out[:, e_i, c_i] = _channel(ch, nkeys, counter)
    return frames, out, 0


def _parse_cc(text: str, counter: list[int]) -> tuple[list[int] | None, np.ndarray]:
    parts = tcl_list(text)
    if not parts or parts[0] != "cc":
        raise InputError("a roto curve does not start with 'cc'")
    for p in parts[1:]:
        sub = tcl_list(p)
        if sub and sub[0] in ("p", "px"):
            frames, vals, _ = _parse_points(sub, counter)
            return frames, vals
    return None, np.zeros((1, 0, 2))


def _attrs(text: str) -> dict[str, float]:
    items = tcl_list(text)
    out: dict[str, float] = {}
    for k, v in zip(items[1::2], items[2::2]):
        num = nk_float(v)
        if num is None:
            lst = tcl_list(v)
            nums = [nk_float(t) for t in lst]
            nums = [x for x in nums if x is not None]
            num = nums[-1] if nums else None
        if num is not None:
            out[k] = num
    return out


_OPEN_FLAG = 0x100000  # open splines (flags 1049088 seen); 1024 marks locked shapes


def _curvegroup(node: str, prefix: str, items: list[str]) -> NukeShape:
    name = items[1]
    flags = int(nk_float(items[2]) or 0)
    counter = [0]
    curves = tcl_list(items[4]) if len(items) > 4 else []
    if not curves:
        raise InputError(f"shape {name} of {node} has no curve")
    main_cc = curves[0]
    frames, vals = _parse_cc(main_cc, counter)
    if vals.shape[1] % 3:
        raise InputError(f"shape {name} of {node} has {vals.shape[1]} point entries, not a multiple of 3")
    feather = None
    notes: list[str] = []
    if len(curves) > 1 and curves[1].strip() != "idem":
        f_frames, f_vals = _parse_cc(curves[1], counter)
        if f_vals.shape[1] == vals.shape[1]:
            if f_vals.shape[0] != vals.shape[0]:
                f_vals = np.repeat(f_vals[:1], vals.shape[0], axis=0)
            feather = f_vals[:, 1::3, :]
        else:
            notes.append("feather curve with a different point count ignored")
    attrs: dict[str, float] = {}
    for extra in items[5:]:
        sub = tcl_list(extra)
        if not sub:
            continue
        if sub[0] == "a":
            attrs = _attrs(extra)
        elif sub[0] in ("t", "tx") and len(sub) > 4:
            notes.append("shape transform not applied")
    shape = NukeShape(node, f"{prefix}{name}", not (flags & _OPEN_FLAG), frames, vals[:, 1::3, :], vals[:, 0::3, :],
                      vals[:, 2::3, :], feather, attrs, counter[0], "bezier", notes)
    if counter[0]:
        shape.notes.append(f"{counter[0]} expression-driven values read as their cached numbers")
    return shape


def _walk_layer(node: str, text: str, prefix: str, shapes: list[NukeShape], notes: list[str]) -> None:
    items = tcl_list(text)
    for it in items[2:]:
        sub = tcl_list(it)
        if not sub:
            continue
        head = sub[0]
        if head == "curvegroup" and len(sub) >= 5:
            if len(sub) > 3 and sub[3] not in ("bezier", "bspline", "ellipse", "rectangle"):
                notes.append(f"{node}: shape {sub[1]} of type {sub[3]} read as a Bézier")
            shapes.append(_curvegroup(node, prefix, sub))
        elif head == "cubiccurve":
            notes.append(f"{node}: paint stroke {sub[1] if len(sub) > 1 else '?'} skipped (not a shape)")
        elif head == "layer":
            name = sub[1] if len(sub) > 1 else "layer"
            t = [tcl_list(x) for x in sub[2:]]
            if any(x and x[0] in ("t", "tx") and len(x) > 4 for x in t):
                notes.append(f"{node}: transform of layer {name} not applied")
            _walk_layer(node, it, f"{prefix}{name}/" if name != "Root" else prefix, shapes, notes)


def roto_shapes(node: NkNode) -> tuple[list[NukeShape], list[str]]:
    """The shapes of one Roto/RotoPaint node, and notes about what was skipped."""
    raw = node.knobs.get("curves")
    if not raw:
        return [], []
    items = tcl_list(raw)
    while len(items) == 1:
        items = tcl_list(items[0])
    shapes: list[NukeShape] = []
    notes: list[str] = []
    for it in items:
        sub = tcl_list(it)
        if sub and sub[0] == "n":
            for layer in sub[1:]:
                _walk_layer(node.path, layer, "", shapes, notes)
    return shapes, notes


@dataclass
class NukeScript:
    path: str
    nodes: list[NkNode]
    shapes: list[NukeShape]
    notes: list[str]
    format: tuple[int, int] | None  # (width, height) of the Root format, when stated
    layer_centre: tuple[float, float] | None  # the Roto root layer's centre (half the format)

    def height(self, default: int | None = None) -> int:
        if default:
            return int(default)
        if self.format:
            return self.format[1]
        if self.layer_centre:
            return int(round(2 * self.layer_centre[1]))
        raise InputError("the script does not say the image height", path=self.path,
                         hint="Import it into a session (its plate gives the height)")

    def roto_nodes(self) -> list[str]:
        return sorted({s.node for s in self.shapes})


def _format_of(nodes: list[NkNode]) -> tuple[int, int] | None:
    for n in nodes:
        if n.cls == "Root" and n.knobs.get("format"):
            parts = n.knobs["format"].split()
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return int(parts[0]), int(parts[1])
    return None


def read_nk(path: str | Path, *, nodes: list[str] | None = None) -> NukeScript:
    """Read every Roto/RotoPaint shape of a script (or of the named nodes)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"the Nuke script cannot be read ({exc.strerror})", path=str(p)) from exc
    try:
        all_nodes = parse_nk(text)
    except InputError as exc:
        raise InputError(f"the Nuke script cannot be parsed: {exc.message}", path=str(p),
                         hint="Save it again from Nuke (File > Save) and retry") from exc
    shapes: list[NukeShape] = []
    notes: list[str] = []
    centre = None
    wanted = set(nodes) if nodes else None
    for n in all_nodes:
        if n.cls not in ("Roto", "RotoPaint"):
            continue
        if wanted is not None and n.name not in wanted and n.path not in wanted:
            continue
        try:
            sh, nt = roto_shapes(n)
        except InputError as exc:
            notes.append(f"{n.path}: skipped ({exc.message})")
            continue
        node_centre = None
        m = re.search(r"\{layer Root\s*\{f [^}]*\}\s*\{t (\S+) (\S+?)\}", n.knobs.get("curves", ""))
        if m:
            cx, cy = nk_float(m.group(1)), nk_float(m.group(2))
            if cx is not None and cy is not None:
                node_centre = (cx, cy)
        for x in sh:
            x.format_centre = node_centre
        shapes.extend(sh)
        notes.extend(nt)
        if centre is None and node_centre is not None:
            centre = node_centre
    if wanted:
        found = {s.node for s in shapes} | {s.node.split(".")[-1] for s in shapes}
        missing = wanted - found
        if missing:
            raise InputError(f"no Roto node named {', '.join(sorted(missing))} with shapes in the script", path=str(p))
    return NukeScript(str(p), all_nodes, shapes, notes, _format_of(all_nodes), centre)
