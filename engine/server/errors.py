"""Errors the server adds to :mod:`engine.errors`, each with a stable code and an HTTP status.

They are :class:`~engine.errors.RotoError` subclasses, so they travel as ``to_dict()`` data like
every other engine error. Standard library only.
"""

from __future__ import annotations

from engine.errors import (BackendUnavailable, Cancelled, DependencyMissing, InputError, ModelError, OutputError,
                           RotoError, SessionError)


class Unauthorized(RotoError):
    """The request carries no token, or the wrong one."""

    code = "unauthorized"


class PathRefused(InputError):
    """A path in the request lies outside the server's configured roots."""

    code = "path_refused"


class NotFound(InputError):
    """No session, job, prompt or route of that name."""

    code = "not_found"


class InvalidRequest(InputError):
    """The request is not valid JSON or does not match its schema."""

    code = "invalid_request"


class RequestTooLarge(InputError):
    """The request body is over the server's size limit."""

    code = "request_too_large"


class Busy(RotoError):
    """The session or the GPU is taken by a running job; try again or cancel it."""

    code = "busy"


class FeatureUnavailable(BackendUnavailable):
    """A job kind whose engine module is not part of this engine version (or cannot run here)."""

    code = "feature_unavailable"


class Interrupted(RotoError):
    """The server stopped while the job ran and the job could not be resumed."""

    code = "interrupted"


class InternalError(RotoError):
    """A bug in the engine; the details are in the server's log under ``ref``."""

    code = "internal_error"


def http_status(exc: RotoError) -> int:
    """The HTTP status a :class:`RotoError` is answered with.

    An :class:`OutputError` is about a path the request named (a project file that is a folder, an
    output folder that cannot be written): 400, the client chooses another path. Only when the file
    is one the server keeps in its own state folder (a key's project file) is it the server's fault,
    500 — as are :class:`InternalError` (a bug) and :class:`Interrupted`."""
    if isinstance(exc, OutputError):
        from engine.export.naming import is_server_project

        return 500 if exc.path and is_server_project(exc.path) else 400
    table: list[tuple[type[RotoError], int]] = [
        (Unauthorized, 401), (PathRefused, 403), (NotFound, 404), (RequestTooLarge, 413),
        (InvalidRequest, 422), (Busy, 409), (Cancelled, 409), (FeatureUnavailable, 501),
        (BackendUnavailable, 503), (DependencyMissing, 503), (ModelError, 503), (SessionError, 400),
        (InputError, 400), (Interrupted, 500), (InternalError, 500),
    ]
    for cls, status in table:
        if isinstance(exc, cls):
            return status
    return 400
