"""Service functions behind the widget API: the case cache, article links and the article actions.

Each action on an article (attach, send, feedback, dismiss) runs once for
the same agent, case and article (and, for send and feedback, the same
content). The idempotency key is claimed in the state store before the
platform write, and the first result is stored with it, so a repeated
request returns that result with ``repeated: true`` and writes nothing. The
one exception is a claim left pending by a crashed request, which a later
request takes over after ``STALE_CLAIM_AFTER``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete

from config.errors import InwardError
from integration.tables import (
    append_comment,
    append_work_note,
    attach_article,
    journal_marker,
    record_feedback,
    record_use,
)
from inward.store import Action, claim_action, complete_action, list_events, record_event
from knowledge.visibility import ANYONE

logger = logging.getLogger(__name__)

# A claim still pending after this long belongs to a request that died
# between the claim and the platform write, so a new request may take it over.
# The journal marker and the m2m_kb_task lookup keep such a retry from writing twice.
# NOTE: a kb_feedback or kb_use row has no natural key, so a takeover after a
# crash in the middle of those writes can create a second row.
STALE_CLAIM_AFTER = timedelta(minutes=5)

EVENT_IMPRESSION = "impression"
EVENT_OPEN = "open"
EVENT_ATTACH = "attach"
EVENT_SEND = "send"
EVENT_FEEDBACK = "feedback"
EVENT_DISMISS = "dismiss"


class WidgetError(InwardError):
    """A widget request that cannot be served; ``status`` and ``code`` become the JSON error."""

    def __init__(self, code: str, message: str, *, status: int = 400, **context: object) -> None:
        super().__init__(message, **context)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class ArticleTarget:
    """The agent, case and article one action is about."""

    agent: Any
    case: Any
    article: dict[str, Any]
    rank: int | None = None

    @property
    def article_sys_id(self) -> str:
        return self.article["sys_id"]


class CaseCache:
    """Cases read from the platform, kept for ``ttl`` seconds so each widget call does not re-read them."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, table: str, sys_id: str, load: Callable[[], Any]) -> Any:
        """Return the cached case, or call ``load`` and cache its result."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get((table, sys_id))
        if entry is not None and entry[0] > now:
            return entry[1]
        case = load()
        with self._lock:
            # Drop expired entries now and then so the cache cannot grow without bound.
            if len(self._entries) > 1000:
                self._entries = {key: value for key, value in self._entries.items() if value[0] > now}
            self._entries[(table, sys_id)] = (now + self._ttl, case)
        return case


def article_link(platform_url: str, sys_id: str) -> str:
    """Return the platform's agent-facing link to an article."""
    return f"{platform_url.rstrip('/')}/kb_view.do?sys_kb_id={sys_id}"


def action_key(kind: str, agent_sys_id: str, case: Any, article_sys_id: str, content: str = "") -> str:
    """Hash the parts that make two requests the same action into an idempotency key."""
    parts = [kind, agent_sys_id, case.table, case.sys_id, article_sys_id, content]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"widget:{kind}:{digest}"


def compose_work_note(target: ArticleTarget, note: str, platform_url: str) -> str:
    """Build the work note posted when an article is attached with a note."""
    article = target.article
    reference = f"Knowledge article {article['number']}: {article['title']}"
    link = article_link(platform_url, target.article_sys_id)
    return f"{note.strip()}\n\n{reference}\n{link}"


def compose_customer_comment(target: ArticleTarget, summary: str, platform_url: str) -> str:
    """Build the customer-visible comment that sends an article: the summary, then title and link."""
    article = target.article
    link = article_link(platform_url, target.article_sys_id)
    return f"{summary.strip()}\n\n{article['title']} ({article['number']})\n{link}"


def posted_comment(target: ArticleTarget, summary: str, platform_url: str) -> str:
    """Return the comment exactly as ``send`` posts it: the composed text, then the journal marker line.

    ``append_comment`` writes the right-stripped text, a line break and the
    marker of the send's idempotency key, and this function builds the same string.
    """
    text = compose_customer_comment(target, summary, platform_url)
    return f"{text.rstrip()}\n{journal_marker(_send_key(target, text))}"


def is_public_article(document: dict, rules: Any, *, block_without_criteria: bool) -> bool:
    """Return whether anyone, customers included, may read the article, so it may be sent to a customer.

    The article is public only when its knowledge base is active and has no
    can-read or cannot-read user criteria, and the article has neither. A
    knowledge base missing from ``rules`` counts as not public.
    """
    base = rules.knowledge_bases.get(document.get("kb_sys_id") or document.get("kb") or "")
    if base is None or not base.active or block_without_criteria:
        return False
    if base.can_read_user_criteria or base.cannot_read_user_criteria:
        return False
    can_read = [criteria for criteria in _as_list(document.get("can_read")) if criteria != ANYONE]
    return not can_read and not _as_list(document.get("cannot_read"))


def _as_list(value: Any) -> list[str]:
    """Read a criteria list stored as a list or as a comma-separated string."""
    if not value:
        return []
    if isinstance(value, str):
        return [part for part in value.split(",") if part]
    return [str(part) for part in value]


def run_once(store: Any, *, key: str, kind: str, perform: Callable[[], dict], on_done: Callable) -> dict:
    """Run ``perform`` once per idempotency key and store its result.

    Returns the result with ``repeated`` false on the first call and the
    stored result with ``repeated`` true afterwards. ``on_done(session)``
    records the event in the same transaction that stores the result. When
    ``perform`` raises, the claim is released so the agent can try again.
    """
    with store.session() as session:
        action, created = claim_action(session, key=key, kind=kind)
        status, result, claimed_at = action.status, action.result, action.created_at
    if not created:
        if status == "done":
            return {**result, "repeated": True}
        if datetime.now(timezone.utc) - claimed_at < STALE_CLAIM_AFTER:
            raise WidgetError(
                "action_in_progress",
                "The same action is already running for this case and article; wait a moment and reload.",
                status=409,
            )
        logger.warning("Taking over the stale claim %s of kind %s", key, kind)
    try:
        result = perform()
    except Exception:
        _release_claim(store, key)
        raise
    with store.session() as session:
        complete_action(session, key=key, result=result)
        on_done(session)
    return {**result, "repeated": False}


def _release_claim(store: Any, key: str) -> None:
    with store.session() as session:
        session.execute(delete(Action).where(Action.key == key, Action.status == "pending"))
    logger.info("Released the claim %s after a failed action", key)


def attach(services: Any, target: ArticleTarget, *, work_note: str = "") -> dict:
    """Link the article to the case in ``m2m_kb_task``, and post the work note if one is given."""
    records = services.platform.records
    platform_url = services.settings.platform.url
    key = action_key(EVENT_ATTACH, target.agent.sys_id, target.case, target.article_sys_id)

    def perform() -> dict:
        link_sys_id = attach_article(
            records, task_sys_id=target.case.sys_id, article_sys_id=target.article_sys_id
        )
        result = {"action": EVENT_ATTACH, "m2m_kb_task": link_sys_id, "work_note": None}
        if work_note.strip():
            text = compose_work_note(target, work_note, platform_url)
            append_work_note(records, table=target.case.table, sys_id=target.case.sys_id, text=text, key=key)
            result["work_note"] = text
        record_use(records, article_sys_id=target.article_sys_id, user_sys_id=target.agent.sys_id, used=True)
        return result

    detail = {"work_note": bool(work_note.strip())}
    return run_once(services.store, key=key, kind=EVENT_ATTACH, perform=perform,
                    on_done=_event_recorder(EVENT_ATTACH, target, detail))


def send(services: Any, target: ArticleTarget, *, summary: str) -> dict:
    """Post the article link and the agent's summary as a customer-visible ``comments`` entry."""
    records = services.platform.records
    text = compose_customer_comment(target, summary, services.settings.platform.url)
    key = _send_key(target, text)

    def perform() -> dict:
        entry = append_comment(records, table=target.case.table, sys_id=target.case.sys_id, text=text, key=key)
        record_use(records, article_sys_id=target.article_sys_id, user_sys_id=target.agent.sys_id, used=True)
        return {"action": EVENT_SEND, "comment": text, "journal_entry": _journal_entry_id(entry)}

    return run_once(services.store, key=key, kind=EVENT_SEND, perform=perform,
                    on_done=_event_recorder(EVENT_SEND, target, {"length": len(text)}))


def _send_key(target: ArticleTarget, text: str) -> str:
    return action_key(EVENT_SEND, target.agent.sys_id, target.case, target.article_sys_id, text)


def give_feedback(services: Any, target: ArticleTarget, *, helpful: bool | None, comment: str, flag: bool) -> dict:
    """Record the agent's rating of the article in ``kb_feedback``."""
    records = services.platform.records
    content = f"{helpful}|{flag}|{comment.strip()}"
    key = action_key(EVENT_FEEDBACK, target.agent.sys_id, target.case, target.article_sys_id, content)

    def perform() -> dict:
        feedback_sys_id = record_feedback(
            records,
            article_sys_id=target.article_sys_id,
            user_sys_id=target.agent.sys_id,
            useful=helpful,
            comments=comment.strip(),
            flagged=flag,
        )
        return {"action": EVENT_FEEDBACK, "kb_feedback": feedback_sys_id}

    detail = {"helpful": helpful, "flag": flag, "comment": bool(comment.strip())}
    return run_once(services.store, key=key, kind=EVENT_FEEDBACK, perform=perform,
                    on_done=_event_recorder(EVENT_FEEDBACK, target, detail))


def dismiss(services: Any, target: ArticleTarget, *, reason: str = "") -> dict:
    """Hide the article from this agent's suggestions for this case; nothing is written to the platform."""
    key = action_key(EVENT_DISMISS, target.agent.sys_id, target.case, target.article_sys_id)
    return run_once(
        services.store,
        key=key,
        kind=EVENT_DISMISS,
        perform=lambda: {"action": EVENT_DISMISS},
        on_done=_event_recorder(EVENT_DISMISS, target, {"reason": reason.strip()} if reason.strip() else None),
    )


def dismissed_articles(store: Any, *, agent_sys_id: str, case_sys_id: str) -> set[str]:
    """Return the sys_ids of the articles this agent dismissed for this case."""
    with store.session() as session:
        events = list_events(session, kind=EVENT_DISMISS, agent_sys_id=agent_sys_id, case_sys_id=case_sys_id)
        return {event.article_sys_id for event in events if event.article_sys_id}


def record_impressions(store: Any, *, agent: Any, case: Any | None, hits: list[dict], detail: dict) -> None:
    """Store one impression event per result shown, with the rank it was shown at."""
    with store.session() as session:
        for hit in hits:
            record_event(
                session,
                kind=EVENT_IMPRESSION,
                agent_sys_id=agent.sys_id,
                case_table=case.table if case else None,
                case_sys_id=case.sys_id if case else None,
                article_sys_id=hit["sys_id"],
                rank=hit["rank"],
                detail=detail,
            )


def record_open(store: Any, *, agent: Any, table: str | None, case_sys_id: str | None,
                article_sys_id: str, rank: int | None) -> None:
    """Store the event of an agent opening an article preview."""
    with store.session() as session:
        record_event(
            session,
            kind=EVENT_OPEN,
            agent_sys_id=agent.sys_id,
            case_table=table,
            case_sys_id=case_sys_id,
            article_sys_id=article_sys_id,
            rank=rank,
        )


def _event_recorder(kind: str, target: ArticleTarget, detail: dict | None) -> Callable:
    def record(session: Any) -> None:
        record_event(
            session,
            kind=kind,
            agent_sys_id=target.agent.sys_id,
            case_table=target.case.table,
            case_sys_id=target.case.sys_id,
            article_sys_id=target.article_sys_id,
            rank=target.rank,
            detail=detail,
        )

    return record


def _journal_entry_id(entry: Any) -> str | None:
    return getattr(entry, "sys_id", None) if entry is not None else None
