"""Domain errors. Each names the gRPC status it becomes, so the API layer maps them in
one place without the domain importing grpc."""


class HashGuardError(Exception):
    """Base class; `status` is a grpc.StatusCode name."""

    status = "INTERNAL"

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Trailing metadata sent with the status (e.g. a retry hint)."""
        return ()


class InvalidInput(HashGuardError):
    status = "INVALID_ARGUMENT"


class RefusedSubmission(InvalidInput):
    """A case hash that carries too little information, or repeats; `reason` is one of
    constant, low_quality, near_constant, duplicate (a metric label)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unauthenticated(HashGuardError):
    status = "UNAUTHENTICATED"


class PermissionDenied(HashGuardError):
    status = "PERMISSION_DENIED"


class NotFound(HashGuardError):
    status = "NOT_FOUND"


class Conflict(HashGuardError):
    """The request is valid but the object is in a state that forbids it."""

    status = "FAILED_PRECONDITION"


class ResourceExhausted(HashGuardError):
    """A limit was reached; the message says which and what to do instead."""

    status = "RESOURCE_EXHAUSTED"


class Cancelled(HashGuardError):
    """The caller went away (cancelled the call or its deadline passed): the work it
    asked for was stopped."""

    status = "CANCELLED"


class Unavailable(HashGuardError):
    """The store cannot be reached right now; the caller may retry."""

    status = "UNAVAILABLE"


class LimitExceeded(InvalidInput):
    """One request is larger than a configured cap (pixels, hashes, bytes): retrying the
    same request cannot help, so it is INVALID_ARGUMENT. `limit` names the cap (the
    `limit` label of hashguard_rate_limited_total)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class QuotaExceeded(ResourceExhausted):
    """The caller used up a rate or quota. `retry_after` (seconds), when known, is sent
    as the trailing metadata `retry-after-ms` and named in the message."""

    def __init__(self, limit: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after

    def trailers(self) -> tuple[tuple[str, str], ...]:
        if self.retry_after is None:
            return ()
        return (("retry-after-ms", str(max(1, round(self.retry_after * 1000)))),)
