"""Keep the knowledge index in step with ``kb_knowledge`` on the platform.

A sync reads articles in ``(sys_updated_on, sys_id)`` order from the cursor
stored in the state store (``sync_state`` row ``knowledge``), in batches of
``knowledge.sync_batch_size``. Each batch is written to the index first and
the cursor is saved only after that commit, so a crash repeats at most one
batch and never skips one. Writing a batch twice is harmless because the
index replaces documents by sys_id.

Live articles (published, active, ``valid_to`` empty or not before today in
UTC) are indexed; every other article read is removed from the index.
Deleted articles, and articles that passed ``valid_to`` without being
updated, are found by reconciliation: the sys_ids of live articles on the
platform are compared with ``index.ids()``. It runs on ``full`` syncs and
when the last one is older than ``knowledge.reconcile_interval_hours``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from contextlib import closing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from queue import Full, Queue
from typing import Any, Protocol
from urllib.parse import urlsplit

from integration.client import resolve_platform
from integration.queries import Query
from integration.tables import list_articles_updated_since, list_knowledge_bases, list_user_criteria
from knowledge.documents import ArticleDoc

logger = logging.getLogger(__name__)

CURSOR_NAME = "knowledge"
PUBLISHED = "published"
# Sys_ids per IN condition when reading priors. 100 ids keep a request URL
# near 3.5 kB, below the 8190-byte request line limit that Apache httpd
# sets by default (LimitRequestLine); the platform's own limit is unknown.
PRIOR_CHUNK = 100
HELPFUL_VALUES = frozenset({"yes", "true", "1"})
UNHELPFUL_VALUES = frozenset({"no", "false", "0"})

Progress = Callable[[int], Any]
# Batches read from the platform ahead of the one being indexed.
READ_AHEAD = 2
# Seconds to wait for the reader thread after a failed sync; a platform
# request in flight still ends within the platform read timeout.
READER_JOIN_TIMEOUT = 5.0
_END = object()


@dataclass
class SyncReport:
    """Counts, duration and end cursor of one sync or rebuild."""

    read: int = 0
    indexed: int = 0
    removed: int = 0
    skipped: int = 0
    duration: float = 0.0
    cursor: tuple[datetime | None, str] | None = None
    full: bool = False
    reconciled: bool = False
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for logs, the CLI and the admin pages."""
        updated_on, sys_id = self.cursor or (None, "")
        return {
            "read": self.read,
            "indexed": self.indexed,
            "removed": self.removed,
            "skipped": self.skipped,
            "failed": self.failed,
            "duration": round(self.duration, 3),
            "cursor": {
                "sys_updated_on": updated_on.isoformat() if updated_on else None,
                "sys_id": sys_id,
            },
            "full": self.full,
            "reconciled": self.reconciled,
        }


@dataclass
class SyncParts:
    """The components a sync works with, taken from ``Services`` or given directly."""

    records: Any
    index: Any
    store: Any
    settings: Any
    visibility: Any = None


@dataclass
class SyncState:
    """The stored resume point: cursor, last reconciliation and last run date."""

    updated_on: datetime | None = None
    sys_id: str = ""
    reconciled_at: datetime | None = None
    last_run_on: date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cursor(self) -> tuple[datetime | None, str] | None:
        if self.updated_on is None and not self.sys_id:
            return None
        return (self.updated_on, self.sys_id)


def needs_full_sync(known_ids: set[str]) -> bool:
    """Tell whether a saved cursor is useless because the index contains no articles.

    A corrupt or schema-mismatched index is replaced by an empty one at
    start-up; an incremental read from the old cursor would then leave every
    older article out of the index.
    """
    if known_ids:
        return False
    logger.warning("Knowledge index is empty; running a full sync instead of an incremental one")
    return True


def platform_identity(settings: Any) -> str:
    """Return the platform's scheme, host, port and path, without any user info or query."""
    parts = urlsplit(resolve_platform(settings).url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def cursor_from_other_platform(state: SyncState, platform_url: str) -> bool:
    """Tell whether the saved cursor was taken on another platform than the one configured.

    Cursors from two instances are not comparable, so following one on the
    other would skip that instance's older articles.
    """
    saved = state.extra.get("platform")
    if saved is None or saved == platform_url:
        return False
    logger.warning(
        "Knowledge cursor was saved for %s, not %s; running a full sync", saved, platform_url
    )
    return True


def sync_knowledge(
    services: Any,
    *,
    full: bool = False,
    progress: Progress | None = None,
    settings: Any = None,
    now: datetime | None = None,
) -> SyncReport:
    """Bring the index up to date with the platform and return what changed.

    ``services`` is a ``Services`` or a ``(records, index, store)`` tuple, in
    which case ``settings`` is required. ``full`` rereads every article from
    the start and reconciles. ``progress`` is called with the number of
    articles read after each batch. ``now`` fixes the clock for tests.
    """
    parts = resolve_parts(services, settings)
    now = now or datetime.now(timezone.utc)
    started = time.monotonic()
    report = SyncReport(full=full)
    state = load_state(parts.store)
    known_ids = set(parts.index.ids())
    platform_url = platform_identity(parts.settings)
    if not full and state.updated_on is not None and needs_full_sync(known_ids):
        full = report.full = True
    if not full and state.updated_on is not None and cursor_from_other_platform(state, platform_url):
        full = report.full = True
    state.extra["platform"] = platform_url
    if full:
        state.updated_on, state.sys_id = None, ""
    logger.info("Knowledge sync started (full=%s) from cursor %s", full, state.cursor)

    titles = load_knowledge_bases(parts)
    read_ids: set[str] = set()
    articles = list_articles_updated_since(parts.records, cursor=state.cursor)
    batches = batched(articles, parts.settings.knowledge.sync_batch_size)
    with closing(read_ahead(batches)) as ready:
        for batch in ready:
            apply_batch(parts, batch, titles, known_ids, report, today=now.date())
            # NOTE: sys_updated_on has one-second resolution. An article saved
            # later within the cursor's second, with a smaller sys_id, sorts
            # before the cursor and is missed until --full or its next update.
            state.updated_on, state.sys_id = batch[-1].sys_updated_on, batch[-1].sys_id
            save_state(parts.store, state)
            read_ids.update(article.sys_id for article in batch)
            if progress is not None:
                progress(len(batch))

    remove_expired(parts, state, known_ids, report, today=now.date())
    if full:
        # A full read returned every article on the platform, so an indexed
        # article it did not return was deleted; no extra listing is needed.
        remove_orphans(parts, known_ids, known_ids - read_ids, report)
        state.reconciled_at = now
    elif reconcile_due(state, parts.settings, now):
        reconcile(parts, known_ids, report, today=now.date())
        state.reconciled_at = now
    return finish_run(parts, state, report, now=now, started=started, name="sync")


def rebuild_index(
    services: Any,
    *,
    progress: Progress | None = None,
    settings: Any = None,
    now: datetime | None = None,
) -> SyncReport:
    """Read every article, build a fresh index from the live ones and reset the cursor.

    ``KnowledgeIndex.rebuild`` writes a new directory and switches to it only
    when complete, so searches keep using the old index meanwhile.
    """
    parts = resolve_parts(services, settings)
    now = now or datetime.now(timezone.utc)
    started = time.monotonic()
    report = SyncReport(full=True, reconciled=True)
    logger.info("Knowledge index rebuild started")
    titles = load_knowledge_bases(parts)
    state = SyncState()

    def live_docs() -> Iterator[ArticleDoc]:
        articles = list_articles_updated_since(parts.records, cursor=None)
        batches = batched(articles, parts.settings.knowledge.sync_batch_size)
        with closing(read_ahead(batches)) as ready:
            for batch in ready:
                failed_before = report.failed
                docs, _ = build_docs(parts, batch, titles, report, today=now.date())
                report.read += len(batch)
                report.indexed += len(docs)
                # Articles that are not live are left out of the new index.
                report.skipped += len(batch) - len(docs) - (report.failed - failed_before)
                state.updated_on, state.sys_id = batch[-1].sys_updated_on, batch[-1].sys_id
                if progress is not None:
                    progress(len(batch))
                yield from docs

    parts.index.rebuild(live_docs())
    state.reconciled_at = now
    state.extra["platform"] = platform_identity(parts.settings)
    return finish_run(parts, state, report, now=now, started=started, name="index rebuild")


def finish_run(parts: SyncParts, state: SyncState, report: SyncReport, *, now: datetime,
               started: float, name: str) -> SyncReport:
    """Save the final sync state, complete the report and log it."""
    state.last_run_on = now.date()
    save_state(parts.store, state)
    report.cursor = state.cursor
    report.duration = time.monotonic() - started
    logger.info("Knowledge %s finished: %s", name, report.to_dict())
    return report


def resolve_parts(services: Any, settings: Any = None) -> SyncParts:
    """Return records, index, store and settings from a Services or a tuple."""
    if isinstance(services, SyncParts):
        return services
    if isinstance(services, tuple):
        if settings is None:
            raise TypeError("settings is required when services is a (records, index, store) tuple")
        records, index, store = services
        return SyncParts(records=records, index=index, store=store, settings=settings)
    return SyncParts(
        records=services.platform.records,
        index=services.index,
        store=services.store,
        settings=settings or services.settings,
        visibility=getattr(services, "visibility", None),
    )


def apply_batch(
    parts: SyncParts,
    batch: list[Any],
    titles: dict[str, str],
    known_ids: set[str],
    report: SyncReport,
    *,
    today: date,
) -> None:
    """Index the live articles of one batch and remove the others from the index."""
    docs, gone = build_docs(parts, batch, titles, report, today=today)
    to_remove = [sys_id for sys_id in gone if sys_id in known_ids]
    if docs:
        parts.index.upsert(docs)
    if to_remove:
        parts.index.delete(to_remove)
    known_ids.update(doc.sys_id for doc in docs)
    known_ids.difference_update(to_remove)
    report.read += len(batch)
    report.indexed += len(docs)
    report.removed += len(to_remove)
    report.skipped += len(gone) - len(to_remove)


def build_docs(
    parts: SyncParts, batch: list[Any], titles: dict[str, str], report: SyncReport, *, today: date
) -> tuple[list[ArticleDoc], list[str]]:
    """Split a batch into documents for the live articles and sys_ids of the others."""
    live = [article for article in batch if is_live(article, today)]
    gone = [article.sys_id for article in batch if not is_live(article, today)]
    helpful, attached = load_priors(parts.records, [article.sys_id for article in live])
    docs = []
    for article in live:
        try:
            docs.append(
                ArticleDoc.from_article(
                    article,
                    kb_title=titles.get(article.kb_knowledge_base, ""),
                    helpful_ratio=helpful.get(article.sys_id),
                    attach_count=attached.get(article.sys_id, 0),
                )
            )
        except (ValueError, TypeError) as error:
            # One malformed article must not block the rest of the batch; it
            # is retried when the article is next updated or on --full.
            report.failed += 1
            logger.error("Article %s (%s) could not be converted: %s", article.sys_id, article.number, error)
    return docs, gone


def is_live(article: Any, today: date) -> bool:
    """Return whether an article is published, active and not past ``valid_to``."""
    if article.workflow_state != PUBLISHED or not article.active:
        return False
    return article.valid_to is None or article.valid_to >= today


def load_knowledge_bases(parts: SyncParts) -> dict[str, str]:
    """Read knowledge bases (and criteria, for visibility) and return titles by sys_id."""
    bases = list_knowledge_bases(parts.records)
    if parts.visibility is not None:
        from knowledge.visibility import VisibilityRules

        criteria = list_user_criteria(parts.records)
        parts.visibility.replace_rules(
            VisibilityRules(knowledge_bases={base.sys_id: base for base in bases}, criteria=criteria)
        )
    return {base.sys_id: base.title for base in bases}


def load_priors(records: Any, sys_ids: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Return the helpful-vote ratio and the attach count of each article in ``sys_ids``."""
    votes: dict[str, Counter] = {}
    attached: Counter[str] = Counter()
    for chunk in chunked(sys_ids, PRIOR_CHUNK):
        feedback = records.list("kb_feedback", Query().in_("article", chunk), fields=["article", "useful"])
        for row in feedback:
            useful = str(row.get("useful") or "").strip().lower()
            if useful in HELPFUL_VALUES or useful in UNHELPFUL_VALUES:
                votes.setdefault(row["article"], Counter())[useful in HELPFUL_VALUES] += 1
        links = records.list("m2m_kb_task", Query().in_("kb_knowledge", chunk), fields=["kb_knowledge"])
        attached.update(row["kb_knowledge"] for row in links if row.get("kb_knowledge"))
    helpful = {
        sys_id: counts[True] / (counts[True] + counts[False]) for sys_id, counts in votes.items()
    }
    return helpful, dict(attached)


def remove_expired(
    parts: SyncParts, state: SyncState, known_ids: set[str], report: SyncReport, *, today: date
) -> None:
    """Remove indexed articles whose ``valid_to`` passed since the last run.

    Passing ``valid_to`` does not change ``sys_updated_on``, so reading from
    the cursor never returns such an article. Before the first run,
    reconciliation covers it.
    """
    if state.last_run_on is None or state.last_run_on >= today:
        return
    query = Query().greater_or_equal("valid_to", state.last_run_on).less_than("valid_to", today)
    expired = [
        row["sys_id"]
        for row in parts.records.list("kb_knowledge", query, fields=["sys_id"])
        if row["sys_id"] in known_ids
    ]
    if expired:
        parts.index.delete(expired)
        known_ids.difference_update(expired)
        report.removed += len(expired)
        logger.info("Removed %d articles past valid_to: %s", len(expired), ", ".join(expired[:20]))


def reconcile(parts: SyncParts, known_ids: set[str], report: SyncReport, *, today: date) -> None:
    """Remove indexed articles that are no longer live on the platform (deleted included)."""
    live_ids = set(list_live_article_ids(parts.records, today))
    remove_orphans(parts, known_ids, known_ids - live_ids, report)


def remove_orphans(parts: SyncParts, known_ids: set[str], orphans: set[str], report: SyncReport) -> None:
    """Delete indexed articles that the platform no longer has as live articles."""
    if orphans:
        parts.index.delete(sorted(orphans))
        known_ids.difference_update(orphans)
        report.removed += len(orphans)
    report.reconciled = True
    if orphans:
        logger.info(
            "Reconciled the index: %d articles kept, %d removed (%s)",
            len(known_ids),
            len(orphans),
            ", ".join(sorted(orphans)[:20]),
        )
    else:
        logger.info("Reconciled the index: %d articles kept, 0 removed", len(known_ids))


def list_live_article_ids(records: Any, today: date) -> Iterator[str]:
    """Yield the sys_id of every live article on the platform."""
    live = (
        Query()
        .equals("workflow_state", PUBLISHED)
        .equals("active", True)
        .is_empty("valid_to")
        .new_query()
        .equals("workflow_state", PUBLISHED)
        .equals("active", True)
        .greater_or_equal("valid_to", today)
    )
    for row in records.list("kb_knowledge", live, fields=["sys_id"]):
        yield row["sys_id"]


def reconcile_due(state: SyncState, settings: Any, now: datetime) -> bool:
    """Return whether the last reconciliation is older than the configured interval."""
    if state.reconciled_at is None:
        return True
    interval = timedelta(hours=settings.knowledge.reconcile_interval_hours)
    return now - state.reconciled_at >= interval


class CursorStore(Protocol):
    """The storage of a sync's resume point, such as ``inward.store.Store``."""

    def load_cursor(self, name: str) -> Any:
        """Return the stored cursor of sync job ``name``, or None before its first run."""

    def save_cursor(self, name: str, cursor: Any) -> None:
        """Store the cursor of sync job ``name``."""


def load_state(store: CursorStore) -> SyncState:
    """Read the stored sync state, or an empty one before the first run."""
    stored = store.load_cursor(CURSOR_NAME)
    if not stored:
        return SyncState()
    stored = dict(stored)
    last_run = stored.pop("last_run_on", None)
    return SyncState(
        updated_on=stored.pop("sys_updated_on", None),
        sys_id=stored.pop("sys_id", "") or "",
        reconciled_at=stored.pop("reconciled_at", None),
        last_run_on=date.fromisoformat(last_run) if last_run else None,
        extra=stored,
    )


def save_state(store: CursorStore, state: SyncState) -> None:
    """Store the sync state; called only after the index commit it describes."""
    cursor = {
        **state.extra,
        "sys_updated_on": state.updated_on,
        "sys_id": state.sys_id,
        "reconciled_at": state.reconciled_at,
        "last_run_on": state.last_run_on.isoformat() if state.last_run_on else None,
    }
    store.save_cursor(CURSOR_NAME, cursor)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of up to ``size`` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_ahead(batches: Iterator[list[Any]], depth: int = READ_AHEAD) -> Iterator[list[Any]]:
    """Yield ``batches`` while a worker thread reads up to ``depth`` more from the platform.

    Reading the next page then overlaps with indexing the current batch.
    An error in the reader is raised here, in the caller's thread. Close the
    generator (``contextlib.closing``) so the reader stops when the caller fails.
    """
    queue: Queue = Queue(maxsize=depth)
    stopping = threading.Event()

    def put(item: Any) -> None:
        while not stopping.is_set():
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                continue

    def read() -> None:
        try:
            for batch in batches:
                put(batch)
                if stopping.is_set():
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread below
            put(error)

    reader = threading.Thread(target=read, name="knowledge-sync-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopping.set()
        reader.join(timeout=READER_JOIN_TIMEOUT)


def chunked(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def schedule_knowledge_sync(scheduler: Any, services: Any) -> None:
    """Register the periodic knowledge sync job on an ``inward.jobs.Scheduler``.

    Reconciliation runs inside the sync when it is due, so one job covers both.
    """
    minutes = services.settings.knowledge.sync_interval_minutes
    scheduler.add("knowledge.sync", minutes * 60, lambda: sync_knowledge(services), first_delay=0)
