"""Domain errors with stable machine codes, rendered as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused command. Nothing was changed when one is raised out of a service."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class SoldOut(Conflict):
    code = "sold_out"


class CapExceeded(Conflict):
    code = "cap_exceeded"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
