"""The engine's exceptions: one root, narrow subclasses, human sentences.

Every error the engine raises on purpose is a :class:`RotoError`. Its message is one or two
sentences a compositor can act on: what went wrong, where (file, frame), and what to do.
Errors cross process boundaries as data (:meth:`RotoError.to_dict` / :func:`error_from_dict`),
so a host shows the sentence instead of crashing.

Standard library only.
"""

from __future__ import annotations

from typing import Any


class RotoError(Exception):
    """Root of every error the engine raises on purpose.

    Parameters
    ----------
    message:
        What went wrong, as a sentence.
    path:
        The file or folder concerned, when there is one.
    frame:
        The plate frame number concerned, when there is one.
    hint:
        What the user can do about it, as a sentence.
    """

    #: Stable machine-readable code, used on the wire and by the CLI.
    code = "roto_error"
    #: Process exit status the CLI uses for this error.
    exit_status = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        frame: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.frame = frame
        self.hint = hint
        super().__init__(self.sentence())

    def sentence(self) -> str:
        """The full human text: location, message, hint."""
        where = []
        if self.path:
            where.append(self.path)
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        text = self.message.rstrip()
        if where:
            text = f"{', '.join(where)}: {text}"
        if not text.endswith((".", "!", "?")):
            text += "."
        if self.hint:
            hint = self.hint.rstrip()
            text += " " + hint + ("" if hint.endswith((".", "!", "?")) else ".")
        return text

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for the server boundary and `--json` output."""
        return {
            "code": self.code,
            "type": type(self).__name__,
            "message": self.message,
            "path": self.path,
            "frame": self.frame,
            "hint": self.hint,
            "text": self.sentence(),
        }


# --- input -------------------------------------------------------------------------------


class InputError(RotoError):
    """The user gave the engine something it cannot use."""

    code = "bad_input"


class MediaError(InputError):
    """A clip, sequence or image cannot be read."""

    code = "media_error"


class MediaNotFound(MediaError):
    """The path does not exist or matches no frames."""

    code = "media_not_found"


class UnsupportedMedia(MediaError):
    """The file exists but its format, codec or layout is not supported."""

    code = "unsupported_media"


class CorruptMedia(MediaError):
    """The file is damaged: empty, truncated or with an invalid header."""

    code = "corrupt_media"


class MissingFrames(MediaError):
    """An image sequence has gaps and the chosen policy is to stop."""

    code = "missing_frames"

    def __init__(self, message: str, *, missing: list[int] | tuple[int, ...] = (), **kw: Any):
        self.missing = tuple(missing)
        super().__init__(message, **kw)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["missing"] = list(self.missing)
        return data


class InconsistentSequence(MediaError):
    """Frames of one sequence disagree (resolution, channels)."""

    code = "inconsistent_sequence"


class FrameOutOfRange(InputError):
    """A frame number outside the clip's range was asked for."""

    code = "frame_out_of_range"


class ColourError(InputError):
    """A colourspace name or OCIO config cannot be used."""

    code = "colour_error"


class PromptError(InputError):
    """A prompt (point, box, mask, text) is invalid for this clip or object."""

    code = "prompt_error"


class SessionError(InputError):
    """A session project file or an edit of it is invalid."""

    code = "session_error"


# --- environment ---------------------------------------------------------------------------


class DependencyMissing(RotoError):
    """An optional package is not installed; one feature is disabled, the rest works."""

    code = "dependency_missing"


class BackendUnavailable(RotoError):
    """A model backend cannot run here (unknown name, missing weights or package)."""

    code = "backend_unavailable"


class ModelError(RotoError):
    """Model weights are missing, corrupt or do not match."""

    code = "model_error"


# --- output and control --------------------------------------------------------------------


class OutputError(RotoError):
    """An output cannot be written (folder not writable, disk full)."""

    code = "output_error"


class Cancelled(RotoError):
    """The user cancelled a long operation; what was finished is kept."""

    code = "cancelled"
    exit_status = 130


_BY_CODE: dict[str, type[RotoError]] = {}


def _index(cls: type[RotoError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _index(sub)


_index(RotoError)


def error_from_dict(data: dict[str, Any]) -> RotoError:
    """Rebuild an error sent as data by :meth:`RotoError.to_dict` (unknown codes → RotoError)."""
    cls = _BY_CODE.get(str(data.get("code")), RotoError)
    kwargs: dict[str, Any] = {
        "path": data.get("path"),
        "frame": data.get("frame"),
        "hint": data.get("hint"),
    }
    if cls is MissingFrames:
        kwargs["missing"] = data.get("missing") or ()
    return cls(str(data.get("message") or data.get("text") or "unknown error"), **kwargs)
