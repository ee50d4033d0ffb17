"""The root of Inward's exception tree.

Every package raises subclasses of ``InwardError`` so callers can catch one
base and still tell failures apart::

    InwardError
    ├── ConfigError                 config/       invalid settings file or value
    ├── PlatformError               integration/  see integration/errors.py
    ├── KnowledgeError              knowledge/
    ├── AuthError                   inward/auth.py
    └── ...                         one subtree per package

The ``config`` package contains the base because it is the one package that
every other package may import.
"""

from __future__ import annotations


class InwardError(Exception):
    """Base of every error Inward raises on purpose.

    ``retryable`` tells a caller whether repeating the same call may succeed.
    ``context`` contains the ids involved (table, sys_id, status) for logs.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None, **context: object) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.context = {key: value for key, value in context.items() if value is not None}

    def __str__(self) -> str:
        return self.message


class ConfigError(InwardError):
    """A settings file or value is invalid; ``errors`` maps key paths to messages."""

    def __init__(self, message: str, *, errors: dict[str, str] | None = None, **context: object) -> None:
        super().__init__(message, **context)
        self.errors = errors or {}
