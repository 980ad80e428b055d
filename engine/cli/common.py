"""Options and helpers shared by ``roto`` sub-commands (argument groups, progress, cancel)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

from engine.errors import InputError
from engine.util.progress import CancelToken, Progress, ProgressCallback


def add_input_args(parser: argparse.ArgumentParser, *, missing_default: str = "error") -> None:
    """INPUT plus the options every command reading a plate understands."""
    parser.add_argument("input", metavar="INPUT",
                        help="movie (MP4/MOV/AVI/WebM), one frame of a sequence, a pattern "
                             "(shot.####.exr, shot.%%04d.dpx) or a folder")
    g = parser.add_argument_group("plate")
    g.add_argument("--colourspace", "--colorspace", dest="colourspace", metavar="NAME",
                   help="input colourspace (OCIO name or alias); default: inferred from the file")
    g.add_argument("--ocio", metavar="CONFIG", help="OCIO config path or ocio:// URI (default: $OCIO or the built-in studio config)")
    g.add_argument("--missing", choices=("error", "hold", "black"), default=missing_default,
                   help="gaps in a sequence: stop with an error (default), hold the previous frame, or black")
    g.add_argument("--frames", metavar="IN-OUT", help="in/out points in the plate's frame numbers, e.g. 1001-1100")
    g.add_argument("--fps", metavar="RATE", help="frame rate for sequences that do not state one (24, 23.976, 24000/1001)")


def parse_frames(text: str | None) -> tuple[int | None, int | None]:
    """``"1001-1100"`` → ``(1001, 1100)``; ``"1010"`` → ``(1010, 1010)``; ``"1010-"`` → ``(1010, None)``."""
    if not text:
        return None, None
    t = text.strip()
    try:
        if "-" in t[1:]:
            i = t.index("-", 1)
            lo, hi = t[:i], t[i + 1:]
            return (int(lo) if lo else None), (int(hi) if hi else None)
        return int(t), int(t)
    except ValueError:
        raise InputError(f"--frames {text!r} is not a frame range", hint="Write it like 1001-1100") from None


def open_input(args: argparse.Namespace):
    """Open ``args.input`` as a Clip honouring the plate options."""
    from engine.media.clip import open_clip

    lo, hi = parse_frames(getattr(args, "frames", None))
    return open_clip(args.input, colourspace=args.colourspace, missing=args.missing, in_point=lo,
                     out_point=hi, fps=args.fps, ocio_config=args.ocio)


def open_session_for_input(args: argparse.Namespace):
    """Reopen ``args.session`` for ``args.input``; an error when it was made on another plate (any
    name of the same sequence or movie, from any folder, is the same plate)."""
    from engine.session.session import Session

    session = Session.open(args.session)
    if not session.same_plate(args.input):
        raise InputError(f"the session was made on {session.plate_path}, not on {args.input}", path=args.session,
                         hint="Use another --session file for another plate")
    return session


@contextlib.contextmanager
def cancel_on_interrupt() -> Iterator[CancelToken]:
    """A cancel token set by the first Ctrl-C (work stops cleanly between frames); a second Ctrl-C aborts."""
    token = CancelToken()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum, frame):  # noqa: ARG001
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel("interrupted (Ctrl-C); finished outputs are kept")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressCallback]:
    """A rich progress bar fed by engine :class:`Progress` steps (silent when not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda step: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    tasks: dict[str, int] = {}
    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("frame {task.fields[frame]}"), TimeRemainingColumn(),
                      console=console, transient=False) as bar:
        def update(step: Progress) -> None:
            if step.stage not in tasks:
                tasks[step.stage] = bar.add_task(step.stage, total=step.total, frame="")
            bar.update(tasks[step.stage], completed=step.done, total=step.total,
                       frame="" if step.frame is None else step.frame)

        yield update
