"""The first search stage: a bm25s index that picks the candidate articles for a query.

Whoosh scores every document that contains any query term in Python, which
costs about a second per query at 10,000 articles. This stage scores the
same terms over title, meta and body with ``bm25s`` (precomputed BM25 scores
in a sparse matrix, so a query costs a few numpy operations) and returns the
sys_ids of the best ``ranking.candidates`` articles. ``KnowledgeIndex`` then
runs its full ranking on those articles only.

The bm25s index is a snapshot of the Whoosh index's stored fields. Articles
upserted after the snapshot was taken are "dirty": they are always added to
the candidates, so a new or changed article is never missed. Deleted
articles may still be returned here; the second stage drops them because
Whoosh no longer has them. Snapshots are rebuilt in a background thread a
short delay after the last write, so a sync batch does not wait for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np

from knowledge.ranking import WeightedTerm

logger = logging.getLogger(__name__)

ANYONE = "__anyone__"
# Visibility masks kept per snapshot; one per agent profile in use.
MAX_CACHED_MASKS = 64


@dataclass
class Snapshot:
    """The bm25s model of one read of the index, with each row's visibility fields."""

    sys_ids: list[str]
    model: Any
    kb_rows: dict[str, np.ndarray]
    can_read_rows: dict[str, np.ndarray]
    cannot_read_rows: dict[str, np.ndarray]
    masks: dict[Any, np.ndarray] = field(default_factory=dict)

    def visibility_mask(self, visibility_filter: Any) -> np.ndarray | None:
        """Return a 0/1 row mask for a ``VisibilityFilter``, or None for any other filter."""
        access = getattr(visibility_filter, "access", None)
        readable_terms = getattr(visibility_filter, "readable_terms", None)
        if access is None or readable_terms is None:
            return None
        cached = self.masks.get(visibility_filter)
        if cached is None:
            cached = self._build_mask(access, readable_terms)
            if len(self.masks) >= MAX_CACHED_MASKS:
                self.masks.clear()
            self.masks[visibility_filter] = cached
        return cached

    def _build_mask(self, access: Any, readable_terms: Iterable[str]) -> np.ndarray:
        # The same rule as knowledge.visibility.build_filter, on rows: a readable
        # knowledge base, a readable can_read term, and no denied cannot_read term.
        count = len(self.sys_ids)
        bases = _rows_with(self.kb_rows, access.readable_bases, count)
        readable = _rows_with(self.can_read_rows, readable_terms, count)
        denied_terms = self.cannot_read_rows.keys() if access.deny_all_restricted else access.denied
        denied = _rows_with(self.cannot_read_rows, denied_terms, count)
        return (bases & readable & ~denied).astype(np.float32)

    def top(self, terms: list[WeightedTerm], count: int, mask: np.ndarray | None) -> list[str]:
        """Return the sys_ids of the ``count`` best rows for the weighted terms, best first."""
        if not self.sys_ids:
            return []
        scores = np.zeros(len(self.sys_ids), dtype=np.float32)
        for term in terms:
            token_id = self.model.vocab_dict.get(term.text)
            if token_id is not None:
                scores += term.weight * self.model.get_scores_from_ids([token_id], weight_mask=mask)
        matching = np.flatnonzero(scores > 0)
        if len(matching) > count:
            best = np.argpartition(-scores[matching], count - 1)[:count]
            matching = matching[best]
        ordered = matching[np.argsort(-scores[matching], kind="stable")]
        return [self.sys_ids[row] for row in ordered]


def _rows_with(rows_by_term: dict[str, np.ndarray], terms: Iterable[str], count: int) -> np.ndarray:
    """Return a boolean array, True for the rows that contain any of ``terms``."""
    found = np.zeros(count, dtype=bool)
    for term in terms:
        rows = rows_by_term.get(term)
        if rows is not None:
            found[rows] = True
    return found


def build_snapshot(stored_documents: Iterable[dict[str, Any]], tokenize: Callable[[str], list[str]]) -> Snapshot:
    """Tokenize the stored fields of every document and build the bm25s model over them."""
    sys_ids: list[str] = []
    corpus: list[list[str]] = []
    kb_rows: dict[str, list[int]] = {}
    can_read_rows: dict[str, list[int]] = {}
    cannot_read_rows: dict[str, list[int]] = {}
    for stored in stored_documents:
        row = len(sys_ids)
        sys_ids.append(stored["sys_id"])
        text = "\n".join(stored.get(name) or "" for name in ("title", "meta", "body"))
        corpus.append(tokenize(text))
        kb_rows.setdefault(stored.get("kb") or "", []).append(row)
        for term in _split(stored.get("can_read")) or [ANYONE]:
            can_read_rows.setdefault(term, []).append(row)
        for term in _split(stored.get("cannot_read")):
            cannot_read_rows.setdefault(term, []).append(row)
    model = bm25s.BM25()
    if corpus:
        model.index(corpus, show_progress=False)
    return Snapshot(sys_ids=sys_ids, model=model, kb_rows=_as_arrays(kb_rows),
                    can_read_rows=_as_arrays(can_read_rows), cannot_read_rows=_as_arrays(cannot_read_rows))


def _split(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def _as_arrays(rows_by_term: dict[str, list[int]]) -> dict[str, np.ndarray]:
    return {term: np.asarray(rows, dtype=np.int64) for term, rows in rows_by_term.items()}


class CandidateIndex:
    """Pick candidate articles from the latest snapshot plus the articles written since.

    ``load`` is called in the rebuild thread and returns the stored fields
    of every live article; ``tokenize`` turns text into the terms the Whoosh
    index stores, so query terms match.
    """

    def __init__(self, load: Callable[[], Iterable[dict[str, Any]]], tokenize: Callable[[str], list[str]],
                 *, rebuild_delay: float) -> None:
        self._load = load
        self._tokenize = tokenize
        self._rebuild_delay = rebuild_delay
        self._snapshot: Snapshot | None = None
        # Articles written since the snapshot's read began: dirty while no
        # rebuild runs, plus in_build during one.
        self._dirty: set[str] = set()
        self._in_build: set[str] = set()
        self._lock = threading.Lock()
        # Serializes rebuilds, so the dirty sets of two builds never mix.
        self._build_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._requested_at: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="candidate-index", daemon=True)
        self._thread.start()

    def request_rebuild(self, written: Iterable[str] = (), *, now: bool = False, invalidate: bool = False) -> None:
        """Mark ``written`` sys_ids dirty and schedule a rebuild after the rebuild delay.

        ``invalidate`` drops the current snapshot, for writes whose sys_ids are
        unknown (a rebuild, or another process's commit): until the next
        snapshot, ``candidates`` returns None and searches use the full query.
        """
        with self._wake:
            self._dirty.update(written)
            if invalidate:
                self._snapshot = None
            self._requested_at = 0.0 if now else time.monotonic()
            self._wake.notify_all()

    def candidates(self, terms: list[WeightedTerm], count: int, visibility_filter: Any = None,
                   ) -> tuple[list[str], set[str]] | None:
        """Return (best sys_ids, dirty sys_ids) for the terms, or None while no snapshot exists."""
        with self._lock:
            snapshot = self._snapshot
            dirty = self._dirty | self._in_build
        if snapshot is None:
            return None
        mask = snapshot.visibility_mask(visibility_filter) if visibility_filter is not None else None
        return snapshot.top(terms, count, mask), dirty

    def wait_until_current(self, timeout: float | None = None) -> bool:
        """Wait until a snapshot exists and no rebuild is pending; return whether that happened."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while not self._closed and (self._snapshot is None or self._requested_at is not None or self._in_build):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.wait(remaining)
        return not self._closed

    def close(self) -> None:
        """Stop the rebuild thread after any rebuild in progress."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def rebuild_now(self, *, invalidate: bool = False) -> None:
        """Build a snapshot of every article in the calling thread.

        ``invalidate`` drops the current snapshot first, so searches use the
        full query during the build (after the index was replaced).
        """
        if invalidate:
            with self._wake:
                self._snapshot = None
        with self._build_lock:
            with self._wake:
                self._start_build()
            self._rebuild()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._wait_for_request():
                    return
            with self._build_lock:
                with self._wake:
                    self._start_build()
                self._rebuild()

    def _start_build(self) -> None:
        """Move the dirty sys_ids aside for the build about to read the index; hold the lock."""
        self._in_build |= self._dirty
        self._dirty = set()
        self._requested_at = None

    def _wait_for_request(self) -> bool:
        """Wait, holding the lock, until a request is ``rebuild_delay`` old; False once closed."""
        while not self._closed:
            if self._requested_at is not None:
                remaining = self._requested_at + self._rebuild_delay - time.monotonic()
                if self._requested_at == 0.0 or remaining <= 0:
                    return True
                self._wake.wait(remaining)
            else:
                self._wake.wait()
        return False

    def _rebuild(self) -> None:
        started = time.monotonic()
        try:
            snapshot = build_snapshot(self._load(), self._tokenize)
        except Exception:  # noqa: BLE001 - logged; searches fall back to the full Whoosh query
            logger.exception("Rebuilding the candidate index failed; the written articles stay dirty.")
            with self._wake:
                self._dirty |= self._in_build
                self._in_build = set()
                self._wake.notify_all()
            return
        with self._wake:
            self._snapshot = snapshot
            self._in_build = set()
            self._wake.notify_all()
        logger.info("Rebuilt the candidate index with %d articles in %.2f s.",
                    len(snapshot.sys_ids), time.monotonic() - started)
