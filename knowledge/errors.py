"""Errors raised by the knowledge package.

    KnowledgeError            any failure of the knowledge index or its inputs
    ├── IndexBusy             another writer holds the index lock past the timeout
    └── DatasetError          a labelled data set file has an invalid line
"""

from __future__ import annotations

from config.errors import InwardError


class KnowledgeError(InwardError):
    """The knowledge index or one of its inputs failed."""


class IndexBusy(KnowledgeError):
    """Another writer held the index lock longer than ``index.lock_timeout``."""

    retryable = True


class DatasetError(KnowledgeError):
    """A line of a labelled articles or queries file is invalid."""

    def __init__(self, path: str, line: int, problem: str, expected: str) -> None:
        super().__init__(f"{path}:{line}: {problem}; expected {expected}", path=path, line=line)
        self.path = path
        self.line = line
