"""One exception type for every problem a user can fix.

Messages say what was wrong, where (file, op, tensor) and, when it is not obvious, what to do.
The CLI turns them into click errors; nothing else in the package prints tracebacks at users.
"""


class DwsError(Exception):
    """A user-facing error: bad model, bad target, failed build, failed verification."""
