"""Domain errors. Each names the gRPC status it becomes, so the API layer maps them in
one place without the domain importing grpc."""


class HashGuardError(Exception):
    """Base class; `status` is a grpc.StatusCode name."""

    status = "INTERNAL"


class InvalidInput(HashGuardError):
    status = "INVALID_ARGUMENT"


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


class Unavailable(HashGuardError):
    """The store cannot be reached right now; the caller may retry."""

    status = "UNAVAILABLE"
