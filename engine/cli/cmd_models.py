"""``roto models``: the model weights the engine knows, fetched into the local store and checked.

>>> roto models list                       # known models, size, licence, present or not   # doctest: +SKIP
>>> roto models fetch sam2.1-tiny          # download (resumes), check, record the digest   # doctest: +SKIP
>>> roto models verify                     # hash every present file against its digest      # doctest: +SKIP
>>> roto models path sam2.1-tiny           # where the file is (or will be)                  # doctest: +SKIP

The store is ``$ROTO_MODELS`` (else ``<cache dir>/models``); ``ROTO_OFFLINE=1`` never downloads;
``ROTO_MODEL_MIRROR`` points fetches at a studio mirror laid out as ``<name>/<file>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.errors import ModelError


def register(sub) -> None:
    p = sub.add_parser("models", help="list, fetch, verify and locate model weights",
                       description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[-1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = msub.add_parser("list", help="the known models: size, licence, whether present")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)
    f = msub.add_parser("fetch", help="download a model (resumable, checksum-verified)")
    f.add_argument("names", nargs="+", metavar="NAME", help="model name(s) from `roto models list`")
    f.add_argument("--url", help="download from this URL instead of the official location (one NAME only)")
    f.add_argument("--force", action="store_true", help="download again even when the file is present")
    f.add_argument("--forget-checksum", action="store_true",
                   help="drop the digest recorded at the first download (the publisher replaced the file)")
    f.add_argument("--json", action="store_true", help="print JSON")
    f.set_defaults(func=run_fetch)
    v = msub.add_parser("verify", help="hash present files against their published or recorded SHA-256")
    v.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: every present one)")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=run_verify)
    pa = msub.add_parser("path", help="print the models folder, or one model's file path")
    pa.add_argument("name", nargs="?", metavar="NAME")
    pa.set_defaults(func=run_path)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _manager():
    from engine.models.manager import ModelManager

    return ModelManager()


def run_list(args: argparse.Namespace) -> int:
    mgr = _manager()
    rows = mgr.rows()
    if args.json:
        print(json.dumps({"models_dir": str(mgr.root), "offline": mgr.offline, "models": rows,
                          "auto_backend": _auto_sentence()}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"models in {mgr.root}" + ("  (offline)" if mgr.offline else ""))
    for col in ("name", "model", "size", "licence", "status", "sha256"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for r in rows:
        licence = r["licence"] + ("" if r["commercial"] else " [yellow](non-commercial)[/yellow]")
        if r["gated"]:
            licence += " [dim](gated)[/dim]"
        status = "[green]present[/green]" if r["status"] == "present" else r["status"]
        table.add_row(r["name"], r["title"], r["size"], licence, status, r["checksum"])
    console.print(table)
    console.print("Fetch with `roto models fetch NAME`. Non-commercial weights may not be used in paid work.")
    console.print(f"Segmentation backend for --backend auto: {_auto_sentence()}", markup=False)
    return 0


def _auto_sentence() -> str:
    from engine.backends.registry import resolve_segmenter
    from engine.errors import RotoError

    try:
        return resolve_segmenter("auto")[1]
    except RotoError as exc:
        return exc.sentence()


class _Bar:
    """Byte progress on stderr (a rich bar on a terminal, a few lines otherwise)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.last = 0.0
        self._bar = None
        self._task = None

    def __enter__(self):
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
        elif self.enabled and time.monotonic() - self.last > 10:
            self.last = time.monotonic()
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            print(f"roto models: {self.label}: {done / 1e6:.1f} MB{pct}", file=sys.stderr)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


def run_fetch(args: argparse.Namespace) -> int:
    from engine.models.catalogue import get

    mgr = _manager()
    if args.url and len(args.names) > 1:
        raise ModelError("--url applies to one model at a time", hint="Fetch the models one by one")
    entries = [get(n) for n in args.names]  # unknown names fail before any download
    results = []
    for e in entries:
        if not e.commercial and not args.json:
            print(f"roto models: note: {e.name} is licensed {e.licence}: non-commercial use only.", file=sys.stderr)
        if e.gated and not args.json:
            print(f"roto models: note: {e.notes}", file=sys.stderr)
        if args.forget_checksum:
            mgr.forget(e.name)
        present = mgr.find(e.name) is not None
        resumed = mgr.partial_bytes(e.name)
        with _Bar(e.name, enabled=not args.json) as bar:
            res = mgr.fetch(e.name, url=args.url, force=args.force, progress=bar,
                            on_wait=lambda: print(f"roto models: waiting for another fetch of {e.name}",
                                                  file=sys.stderr))
        status = "present" if (present and not args.force) or res.already_present else (
            "resumed" if resumed and res.resumed_from else "downloaded")
        results.append({"name": e.name, "path": str(res.path), "status": status, "bytes": res.size,
                        "sha256": res.sha256 or None, "downloaded": res.downloaded})
        if not args.json:
            extra = f", resumed from {res.resumed_from / 1e6:.1f} MB" if status == "resumed" else ""
            print(f"{e.name}: {status} ({res.size / 1e6:.1f} MB{extra}) {res.path}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from engine.models.catalogue import get, names

    mgr = _manager()
    wanted = [get(n).name for n in args.names] if args.names else [n for n in names() if mgr.find(n)]
    results = [mgr.verify(n) for n in wanted]
    if args.json:
        print(json.dumps([{"name": r.name, "path": str(r.path), "status": r.status, "sha256": r.sha256,
                           "expected": r.expected, "source": r.source, "problem": r.problem} for r in results],
                         indent=2))
    else:
        if not results:
            print(f"no model files in {mgr.root} (fetch one with `roto models fetch NAME`)")
        for r in results:
            text = {"ok": f"ok ({r.source} sha256 {r.sha256})",
                    "recorded": f"no published digest: recorded sha256 {r.sha256} for later checks",
                    "missing": f"missing (run `roto models fetch {r.name}`)",
                    "mismatch": f"MISMATCH: sha256 {r.sha256}, expected {r.expected} ({r.source})",
                    "wrong-size": f"WRONG FILE: {r.problem}"}[r.status]
            print(f"{r.name}: {text}")
    bad = [r for r in results if r.status in ("mismatch", "wrong-size") or (args.names and r.status == "missing")]
    if bad:
        names_text = " ".join(r.name for r in bad)
        raise ModelError(f"{len(bad)} model file(s) failed verification: " + ", ".join(r.name for r in bad),
                         hint=f"Fetch them again with `roto models fetch {names_text} --force`")
    return 0


def run_path(args: argparse.Namespace) -> int:
    mgr = _manager()
    print(mgr.path(args.name) if args.name else mgr.root)
    return 0
