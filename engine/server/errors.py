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
    """The HTTP status a :class:`RotoError` is answered with."""
    table: list[tuple[type[RotoError], int]] = [
        (Unauthorized, 401), (PathRefused, 403), (NotFound, 404), (RequestTooLarge, 413),
        (InvalidRequest, 422), (Busy, 409), (Cancelled, 409), (FeatureUnavailable, 501),
        (BackendUnavailable, 503), (DependencyMissing, 503), (ModelError, 503), (SessionError, 400),
        (InputError, 400), (OutputError, 500), (Interrupted, 500), (InternalError, 500),
    ]
    for cls, status in table:
        if isinstance(exc, cls):
            return status
    return 400
