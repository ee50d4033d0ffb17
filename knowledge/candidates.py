"""The first search stage: a BM25 score matrix that picks the candidate articles for a query.

Whoosh scores every document that contains any query term in Python, which
took 0.9 s per query at p95 with 10,000 articles in
``benchmarks/search_speed.py``. This stage scores the
same terms over title, meta and body with the BM25 scores of ``bm25s``
(precomputed in a sparse matrix, so a query costs a few numpy operations) and
returns the sys_ids of the best ``ranking.candidates`` articles.
``KnowledgeIndex`` then scores those articles only (``knowledge.rescoring``).

The score matrix is a snapshot of the Whoosh index's stored fields. Articles
upserted after the snapshot was taken are "dirty": they are always added to
the candidates, so a new or changed article is not missed. Deleted
articles may still be returned here, and the second stage drops them
because Whoosh no longer has them. Snapshots are rebuilt in a background
thread once writes pause for ``index.candidate_rebuild_delay`` seconds, so
a sync batch does not wait for them.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import logging
import math
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knowledge.ranking import WeightedTerm

logger = logging.getLogger(__name__)

ANYONE = "__anyone__"
# Visibility masks kept per snapshot; one per agent profile in use.
MAX_CACHED_MASKS = 64
# The defaults of bm25s.BM25 (method "lucene"), whose scores the matrix reproduces.
BM25_K1 = 1.5
BM25_B = 0.75
# Matrix entries scored per step; bounds the float64 temporaries to 8 MB each.
SCORING_CHUNK = 1 << 20


@dataclass
class Snapshot:
    """The BM25 score matrix of one read of the index, with each row's visibility fields."""

    sys_ids: list[str]
    matrix: ScoreMatrix
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

    def scores(self, terms: list[WeightedTerm], mask: np.ndarray | None) -> np.ndarray:
        """Return each row's sum of term weight times BM25 score, times its ``mask`` value."""
        scores = np.zeros(len(self.sys_ids), dtype=np.float32)
        for term in terms:
            self.matrix.add_term(scores, term.text, term.weight, mask)
        return scores

    def top(self, terms: list[WeightedTerm], count: int, mask: np.ndarray | None) -> list[str]:
        """Return the sys_ids of the ``count`` best rows for the weighted terms, best first."""
        if not self.sys_ids:
            return []
        scores = self.scores(terms, mask)
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
    """Tokenize the stored fields of every document and build the BM25 score matrix over them."""
    sys_ids: list[str] = []
    counts = TermCounts()
    kb_rows: dict[str, list[int]] = {}
    can_read_rows: dict[str, list[int]] = {}
    cannot_read_rows: dict[str, list[int]] = {}
    for stored in stored_documents:
        row = len(sys_ids)
        sys_ids.append(stored["sys_id"])
        text = "\n".join(stored.get(name) or "" for name in ("title", "meta", "body"))
        counts.add(tokenize(text))
        kb_rows.setdefault(stored.get("kb") or "", []).append(row)
        for term in _split(stored.get("can_read")) or [ANYONE]:
            can_read_rows.setdefault(term, []).append(row)
        for term in _split(stored.get("cannot_read")):
            cannot_read_rows.setdefault(term, []).append(row)
    return Snapshot(sys_ids=sys_ids, matrix=counts.score_matrix(), kb_rows=_as_arrays(kb_rows),
                    can_read_rows=_as_arrays(can_read_rows), cannot_read_rows=_as_arrays(cannot_read_rows))


@dataclass
class ScoreMatrix:
    """The BM25 score of every (document, term) pair, as a documents x terms matrix in CSC layout.

    Column ``i = vocab[term]`` contains the rows ``rows[indptr[i]:indptr[i + 1]]``,
    ascending, and their scores at the same positions of ``scores``.
    """

    vocab: dict[str, int]
    indptr: np.ndarray
    rows: np.ndarray
    scores: np.ndarray

    def add_term(self, totals: np.ndarray, term: str, weight: float, mask: np.ndarray | None) -> None:
        """Add ``weight`` times the term's score, times the row's ``mask`` value, to each row of ``totals``.

        A term that no document contains adds nothing. The float32 steps are
        those of ``totals += weight * BM25.get_scores_from_ids([id], weight_mask=mask)``
        in bm25s 0.3.16, so the totals are the same.
        """
        term_id = self.vocab.get(term)
        if term_id is None:
            return
        start, end = self.indptr[term_id], self.indptr[term_id + 1]
        rows = self.rows[start:end]
        column = self.scores[start:end]
        if mask is not None:
            column = column * mask[rows]
        totals[rows] += weight * column


class TermCounts:
    """The distinct term ids and their counts of each document, collected one document at a time.

    ``bm25s.BM25.index`` needs the token lists of the whole corpus at once.
    With 50,000 generated articles (the generator of
    ``benchmarks/search_speed.py``) that build raised RssAnon by 250 MB, and
    glibc kept 148 MB of it as free heap. This class keeps only the
    vocabulary and flat arrays of 4-byte integers, and ``score_matrix``
    computes the BM25 scores from them in NumPy: RssAnon rose by 67 MB.
    """

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._clear_counts()

    def _clear_counts(self) -> None:
        # Per document, in document order: its distinct term ids and their counts.
        self.term_ids = array("i")
        self.term_counts = array("i")
        # Per document: its number of tokens and of distinct terms.
        self.lengths = array("i")
        self.distinct_terms = array("i")

    def add(self, tokens: list[str]) -> None:
        """Count the tokens of the next document and add new tokens to the vocabulary."""
        vocab = self.vocab
        counted = Counter(tokens)
        # len(vocab) is read before setdefault inserts, so a new token gets the next id.
        self.term_ids.extend([vocab.setdefault(token, len(vocab)) for token in counted])
        self.term_counts.extend(counted.values())
        self.lengths.append(len(tokens))
        self.distinct_terms.append(len(counted))

    def score_matrix(self) -> ScoreMatrix:
        """Compute the BM25 scores of the documents counted so far, and empty the counts.

        The scores are those of ``bm25s.BM25()`` with its defaults (bm25s
        0.3.16, method "lucene", k1 1.5, b 0.75, float32 scores) on the same
        tokens, which a test checks. As in bm25s, the idf of a term is
        ln(1 + (N - df + 0.5) / (df + 0.5)) in float64, rounded to float32.
        The term frequency part tf / (k1 * (1 - b + b * length / mean length) + tf)
        is computed in float64. Their product is rounded to float32.
        """
        vocab = self.vocab
        term_ids = np.frombuffer(self.term_ids, dtype=np.intc)
        counts = np.frombuffer(self.term_counts, dtype=np.intc)
        lengths = np.frombuffer(self.lengths, dtype=np.intc)
        rows = np.repeat(np.arange(len(lengths), dtype=np.int32), np.frombuffer(self.distinct_terms, dtype=np.intc))
        # Without other references, each buffer is freed with its last NumPy view below.
        self.vocab = {}
        self._clear_counts()

        document_frequencies = np.bincount(term_ids, minlength=len(vocab))
        idf = _lucene_idf(document_frequencies, len(lengths))
        scores = np.empty(len(term_ids), dtype=np.float32)
        if len(scores):
            # bm25s computes (b * length) / mean length, in this order, in float64.
            length_norms = BM25_K1 * ((1 - BM25_B) + BM25_B * lengths / lengths.mean())
            for start in range(0, len(scores), SCORING_CHUNK):
                chunk = slice(start, start + SCORING_CHUNK)
                frequencies = counts[chunk].astype(np.float64)
                denominators = length_norms[rows[chunk]]
                denominators += frequencies
                frequencies /= denominators
                frequencies *= idf[term_ids[chunk]]
                scores[chunk] = frequencies
        del counts

        # Column order: a stable sort by term id keeps each column's rows ascending.
        # rows and scores are reordered one after the other, so only one is copied at a time.
        order = np.argsort(term_ids, kind="stable")
        del term_ids
        rows = rows[order]
        scores = scores[order]
        del order
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(document_frequencies, out=indptr[1:])
        return ScoreMatrix(vocab=vocab, indptr=indptr, rows=rows, scores=scores)


def _lucene_idf(document_frequencies: np.ndarray, document_count: int) -> np.ndarray:
    """Return the float32 idf of each term as bm25s 0.3.16 computes it, with math.log on Python floats."""
    distinct, positions = np.unique(document_frequencies, return_inverse=True)
    values = [math.log(1 + (document_count - df + 0.5) / (df + 0.5)) for df in distinct.tolist()]
    return np.asarray(values, dtype=np.float64).astype(np.float32)[positions]


def release_free_heap() -> None:
    """Return the free pages of the glibc heap to the operating system.

    glibc keeps memory freed by small allocations, such as the token strings
    and Counters of a snapshot build, in the process heap for reuse, so RSS
    stays near the build's peak. Since glibc 2.8, ``malloc_trim(0)`` releases
    the free pages of every arena. musl, macOS and Windows have no
    ``malloc_trim``, and there this does nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """Return glibc's ``malloc_trim`` through ctypes, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # dlopen(NULL): the symbols of the process, the C library's among them.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def _split(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def _as_arrays(rows_by_term: dict[str, list[int]]) -> dict[str, np.ndarray]:
    return {term: np.asarray(rows, dtype=np.int64) for term, rows in rows_by_term.items()}


class CandidateIndex:
    """Pick candidate articles from the latest snapshot plus the articles written since.

    ``load`` runs in the rebuild thread and returns the stored fields of
    every live article. ``tokenize`` turns text into the terms that the
    Whoosh index stores, so that query terms match them.
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
            release_free_heap()
            return
        with self._wake:
            self._snapshot = snapshot
            self._in_build = set()
            self._wake.notify_all()
        # Also frees the heap of the replaced snapshot, unless a search still uses it.
        release_free_heap()
        # An empty index is rebuilt twice at start-up: when KnowledgeIndex opens, and
        # on its first search, because Whoosh-Reloaded 2.7.5 reports the searcher of
        # an index without segments as not up to date. Those lines are noise.
        level = logging.INFO if snapshot.sys_ids else logging.DEBUG
        logger.log(level, "Rebuilt the candidate index with %d articles in %.2f s.",
                   len(snapshot.sys_ids), time.monotonic() - started)


# -- restricting the second stage to the candidates ------------------------------


class CandidateDocs:
    """The candidate sys_ids of one search, resolved to document numbers per segment.

    With a ``visibility_filter``, only the candidates it allows are kept, so
    the search needs no Whoosh filter: Whoosh would turn the filter into a
    set of every allowed document on each search, about 40,000 at 50,000
    articles, in Python.
    """

    def __init__(self, sys_ids: Iterable[str], visibility_filter: Any = None) -> None:
        self.sys_ids = sorted(set(sys_ids))
        self.visibility_filter = visibility_filter
        self._by_reader: dict[int, list[int]] = {}

    def docnums(self, searcher: Any) -> list[int]:
        """Return the sorted numbers of the live, allowed candidate documents in a segment's searcher."""
        reader = searcher.reader()
        key = id(reader)
        found = self._by_reader.get(key)
        if found is None:
            found = sorted(
                docnum
                for sys_id in self.sys_ids
                if ("sys_id", sys_id) in reader
                for docnum in reader.postings("sys_id", sys_id).all_ids()
                if not reader.is_deleted(docnum)
            )
            if self.visibility_filter is not None:
                found = self._allowed(searcher, found)
            self._by_reader[key] = found
        return found

    def _allowed(self, searcher: Any, docnums: list[int]) -> list[int]:
        allowed = self.visibility_filter.segment_docs(searcher.reader())
        if allowed is None:
            allowed_set = set(self.visibility_filter.docs(searcher))
            return [docnum for docnum in docnums if docnum in allowed_set]
        return [docnum for docnum in docnums if _contains_sorted(allowed, docnum)]


def _contains_sorted(values: list[int], value: int) -> bool:
    position = bisect.bisect_left(values, value)
    return position < len(values) and values[position] == value
