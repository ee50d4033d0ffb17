"""Which knowledge articles an agent may read, evaluated as the platform does.

Read access has two levels, each with can-read and cannot-read user criteria:

- the knowledge base (``kb_uc_can_read_mtom`` / ``kb_uc_cannot_read_mtom``),
  bypassed by knowledge admins and by the base's owner and managers;
- the article (``can_read_user_criteria`` / ``cannot_read_user_criteria``).

At each level a matching cannot-read criteria denies, whatever the can-read
criteria grant. A knowledge base without can-read criteria is readable by
everyone unless ``knowledge.block_access_with_no_user_criteria`` is set; an
article's can-read criteria, when present, must match as well.

A user criteria record matches when the agent is listed in ``user``, is a
member of a listed ``group`` or has a listed ``role``. With ``match_all``,
every non-empty condition must hold. Inward cannot evaluate the other kinds
(department, location, company, cost center, scripted ``advanced``
criteria), nor criteria it could not load. Such a criteria never grants
access, and as a cannot-read criteria it denies, so an article whose rules
cannot be evaluated is hidden. Each case is logged once per criteria per
cache period and counted in ``Visibility.stats``.

The result for an agent is a Whoosh query over the index fields ``kb``,
``can_read`` and ``cannot_read``, passed to the searcher as a filter so a
hidden article is never scored, counted or shown.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from whoosh import query as wq
from whoosh.query.wrappers import WrappingQuery

from integration.tables import list_knowledge_bases, list_user_criteria

logger = logging.getLogger(__name__)

# Agents cached before expired entries are swept out. Each entry contains a
# few sets of sys_ids and a filter with its per-segment document lists.
MAX_CACHED_AGENTS = 1000

# The index stores this in ``can_read`` for an article without can-read criteria.
ANYONE = "__anyone__"

# gs.hasRole() is true for the admin role whatever role is asked, so platform
# admins bypass knowledge-base criteria just as knowledge admins do.
BYPASS_ROLES = frozenset({"knowledge_admin", "admin"})



class Outcome(enum.Enum):
    """The result of evaluating one user criteria record for one agent."""

    MATCH = "match"
    NO_MATCH = "no_match"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VisibilityRules:
    """The knowledge bases and user criteria that visibility is evaluated against."""

    knowledge_bases: Mapping[str, Any]
    criteria: Mapping[str, Any]

    @classmethod
    def load(cls, records: Any) -> "VisibilityRules":
        """Read every knowledge base and user criteria record from the platform."""
        bases = {base.sys_id: base for base in list_knowledge_bases(records)}
        criteria = dict(list_user_criteria(records))
        logger.info("Loaded %d knowledge bases and %d user criteria", len(bases), len(criteria))
        return cls(knowledge_bases=bases, criteria=criteria)


@dataclass(frozen=True)
class AgentAccess:
    """The knowledge bases an agent may read and the criteria that grant or deny access."""

    readable_bases: frozenset[str]
    granted: frozenset[str]
    denied: frozenset[str]
    expires_at: float
    # True when the cannot-read criteria stored in the index could not be
    # listed, so every article with any cannot-read criteria is hidden.
    deny_all_restricted: bool = False


class Visibility:
    """Evaluate user criteria for agents and build their Whoosh search filters.

    ``rules`` is a ``VisibilityRules`` (or a platform ``Records``, read once
    through ``VisibilityRules.load``). ``index`` is optional: when given, the
    ``cannot_read`` terms stored in it are read so that a cannot-read
    criteria missing from the rules still hides its articles.
    """

    def __init__(
        self,
        rules: VisibilityRules | Any,
        settings: Any,
        *,
        index: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(rules, VisibilityRules):
            rules = VisibilityRules.load(rules)
        self._rules = rules
        self._ttl = float(settings.knowledge.visibility_cache_ttl)
        self._block_without_criteria = settings.knowledge.block_access_with_no_user_criteria
        self._index = index
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple, AgentAccess] = {}
        self._filters: dict[tuple, tuple[AgentAccess, wq.Query]] = {}
        self._logged: dict[str, float] = {}
        self.stats: Counter[str] = Counter()

    @property
    def rules(self) -> VisibilityRules:
        return self._rules

    def replace_rules(self, rules: VisibilityRules) -> None:
        """Use new rules from now on and drop every cached agent result."""
        with self._lock:
            self._rules = rules
            self._cache.clear()
            self._filters.clear()
        logger.info(
            "Visibility rules replaced: %d knowledge bases, %d user criteria",
            len(rules.knowledge_bases),
            len(rules.criteria),
        )

    def filter_for(self, agent: Any) -> wq.Query:
        """Return the Whoosh query matching exactly the articles ``agent`` may read."""
        key = _agent_key(agent)
        access = self.access_for(agent)
        with self._lock:
            cached = self._filters.get(key)
        if cached is not None and cached[0] is access:
            return cached[1]
        built = build_filter(access)
        with self._lock:
            self._filters[key] = (access, built)
        return built

    def can_read(self, agent: Any, doc: Any) -> bool:
        """Return whether ``agent`` may read one article, given as ArticleDoc or index fields."""
        kb_sys_id, can_read, cannot_read = _doc_rules(doc)
        access = self.access_for(agent)
        if kb_sys_id not in access.readable_bases:
            return False
        if cannot_read and access.deny_all_restricted:
            return False
        for criteria_id in cannot_read:
            if criteria_id in access.denied or criteria_id not in self._rules.criteria:
                if criteria_id not in self._rules.criteria:
                    self._note_missing(criteria_id)
                return False
        if not can_read or ANYONE in can_read:
            return True
        return self._any_granted(can_read, access.granted)

    def _any_granted(self, can_read: list[str], granted: frozenset[str] | set[str]) -> bool:
        """Return whether any can-read criteria grants access, noting criteria never loaded."""
        if any(criteria_id in granted for criteria_id in can_read):
            return True
        for criteria_id in can_read:
            if criteria_id not in self._rules.criteria:
                self._note_missing(criteria_id)
        return False

    def access_for(self, agent: Any) -> AgentAccess:
        """Return the agent's evaluated access, from the cache while it is fresh."""
        key = _agent_key(agent)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached.expires_at > now:
            return cached
        access = self._evaluate_access(agent, now)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_AGENTS:
                self._drop_expired(now)
            self._cache[key] = access
        return access

    def _drop_expired(self, now: float) -> None:
        """Forget agents whose cached access expired; the caller holds the lock."""
        expired = [key for key, access in self._cache.items() if access.expires_at <= now]
        for key in expired:
            del self._cache[key]
            self._filters.pop(key, None)
        logger.debug("Dropped %d expired agent entries from the visibility cache", len(expired))

    def _evaluate_access(self, agent: Any, now: float) -> AgentAccess:
        rules = self._rules
        granted, denied = set(), set()
        for criteria_id in rules.criteria:
            outcome = self.evaluate_criteria(criteria_id, agent)
            if outcome is Outcome.MATCH:
                granted.add(criteria_id)
                denied.add(criteria_id)
            elif outcome is Outcome.UNKNOWN:
                denied.add(criteria_id)
        missing = self._missing_cannot_read_criteria()
        if missing is not None:
            denied.update(missing)
        readable = {
            base_id
            for base_id, base in rules.knowledge_bases.items()
            if self._can_read_base(agent, base, granted, denied)
        }
        logger.debug(
            "Access of agent %s: %d of %d knowledge bases, %d criteria grant, %d deny",
            agent.sys_id,
            len(readable),
            len(rules.knowledge_bases),
            len(granted),
            len(denied),
        )
        return AgentAccess(
            readable_bases=frozenset(readable),
            granted=frozenset(granted),
            denied=frozenset(denied),
            expires_at=now + self._ttl,
            deny_all_restricted=missing is None,
        )

    def _can_read_base(self, agent: Any, base: Any, granted: set, denied: set) -> bool:
        # The platform shows no article of an inactive knowledge base, to anyone.
        if not base.active:
            return False
        if _bypasses_base_criteria(agent, base):
            return True
        cannot_read = list(base.cannot_read_user_criteria)
        can_read = list(base.can_read_user_criteria)
        for criteria_id in cannot_read:
            if criteria_id in denied or criteria_id not in self._rules.criteria:
                if criteria_id not in self._rules.criteria:
                    self._note_missing(criteria_id)
                return False
        if not can_read:
            return not self._block_without_criteria
        return self._any_granted(can_read, granted)

    def evaluate_criteria(self, criteria_id: str, agent: Any) -> Outcome:
        """Evaluate one user criteria record for ``agent``; UNKNOWN when Inward cannot tell."""
        criteria = self._rules.criteria.get(criteria_id)
        if criteria is None:
            self._note_missing(criteria_id)
            return Outcome.UNKNOWN
        if not criteria.active:
            return Outcome.NO_MATCH
        if criteria.advanced:
            self._note_unsupported(criteria_id, "a scripted (advanced) condition")
            return Outcome.UNKNOWN
        return self._evaluate_conditions(criteria_id, criteria, agent)

    def _evaluate_conditions(self, criteria_id: str, criteria: Any, agent: Any) -> Outcome:
        results = _supported_results(criteria, agent)
        unsupported = sorted(criteria.unevaluated)
        if criteria.match_all:
            if results and not all(results):
                return Outcome.NO_MATCH
            if unsupported:
                self._note_unsupported(criteria_id, " and ".join(unsupported) + " conditions")
                return Outcome.UNKNOWN
            return Outcome.MATCH if results else Outcome.NO_MATCH
        if any(results):
            return Outcome.MATCH
        if unsupported:
            self._note_unsupported(criteria_id, " and ".join(unsupported) + " conditions")
            return Outcome.UNKNOWN
        return Outcome.NO_MATCH

    def _missing_cannot_read_criteria(self) -> set[str] | None:
        """Return cannot-read criteria ids stored in the index but missing from the rules.

        Returns None when the index cannot be read, so the caller hides every
        article that has cannot-read criteria.
        """
        if self._index is None:
            return set()
        try:
            stored = set(_index_terms(self._index, "cannot_read"))
        except Exception as error:  # noqa: BLE001 - any failure here must hide, not expose
            self.stats["index_terms_failed"] += 1
            logger.error("Listing cannot_read terms of the index failed: %s", error)
            return None
        missing = stored - set(self._rules.criteria)
        for criteria_id in missing:
            self._note_missing(criteria_id)
        return missing

    def _note_unsupported(self, criteria_id: str, condition: str) -> None:
        self._count_and_log(
            "unsupported_criteria",
            criteria_id,
            "User criteria %s has %s, which Inward cannot evaluate; treated as not matching "
            "(and as denying where it is a cannot-read criteria)",
            condition,
        )

    def _note_missing(self, criteria_id: str) -> None:
        self._count_and_log(
            "missing_criteria",
            criteria_id,
            "User criteria %s is referenced but was not loaded; articles it guards are hidden",
        )

    def _count_and_log(self, counter: str, criteria_id: str, message: str, *args: Any) -> None:
        now = self._clock()
        key = f"{counter}:{criteria_id}"
        with self._lock:
            self.stats[counter] += 1
            last = self._logged.get(key)
            if last is not None and now - last < self._ttl:
                return
            self._logged[key] = now
        logger.warning(message, criteria_id, *args)


def build_filter(access: AgentAccess) -> wq.Query:
    """Build the Whoosh filter query for an agent's evaluated access."""
    if not access.readable_bases:
        return wq.NullQuery
    bases = wq.Or([wq.Term("kb", base_id) for base_id in sorted(access.readable_bases)])
    readable_terms = [ANYONE, *sorted(access.granted)]
    allowed = wq.And([bases, wq.Or([wq.Term("can_read", term) for term in readable_terms])])
    if access.deny_all_restricted:
        query = wq.AndNot(allowed, wq.Every("cannot_read"))
    elif access.denied:
        denied = wq.Or([wq.Term("cannot_read", criteria_id) for criteria_id in sorted(access.denied)])
        query = wq.AndNot(allowed, denied)
    else:
        query = allowed
    return VisibilityFilter(query, access=access, readable_terms=readable_terms)


class VisibilityFilter(WrappingQuery):
    """A visibility filter whose documents are computed from postings and cached per segment.

    Whoosh turns a filter query into a document set before every search by
    walking its matcher tree in Python, which costs about 20 ms per 1,000
    articles. This query gives the same documents (a test compares them)
    from set operations on the posting lists, and keeps them per segment:
    a segment's document numbers never change, and its deletion count is
    part of the cache key.
    """

    def __init__(self, child: wq.Query, *, access: AgentAccess, readable_terms: list[str]) -> None:
        super().__init__(child)
        self.access = access
        self.readable_terms = tuple(readable_terms)
        self._segment_docs: dict[tuple[str, int], list[int]] = {}
        self._cache_lock = threading.Lock()

    def _rewrap(self, child: wq.Query) -> wq.Query:
        return VisibilityFilter(child, access=self.access, readable_terms=list(self.readable_terms))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.child == self.child

    def __hash__(self) -> int:
        return hash(self.child)

    def docs(self, searcher: Any, deleting: bool = False) -> Any:
        """Return the numbers of the documents this filter allows in one segment's searcher."""
        allowed = self.segment_docs(searcher.reader())
        if allowed is None:
            return self.child.docs(searcher)
        return iter(allowed)

    def segment_docs(self, reader: Any) -> list[int] | None:
        """Return the sorted allowed document numbers of a segment reader, or None for other readers."""
        key = _segment_key(reader)
        if key is None:
            return None
        with self._cache_lock:
            cached = self._segment_docs.get(key)
        if cached is None:
            cached = self._allowed_docs(reader)
            with self._cache_lock:
                if len(self._segment_docs) >= MAX_CACHED_SEGMENTS:
                    self._segment_docs.clear()
                self._segment_docs[key] = cached
        return cached

    def _allowed_docs(self, reader: Any) -> list[int]:
        bases = _docs_with_terms(reader, "kb", self.access.readable_bases)
        readable = _docs_with_terms(reader, "can_read", self.readable_terms)
        if self.access.deny_all_restricted:
            denied_terms = [_decode(term) for term in reader.lexicon("cannot_read")]
        else:
            denied_terms = self.access.denied
        denied = _docs_with_terms(reader, "cannot_read", denied_terms)
        return sorted((bases & readable) - denied)


# Segments whose allowed documents one filter keeps; a busy index has a few
# dozen segments at most between merges.
MAX_CACHED_SEGMENTS = 64


def _segment_key(reader: Any) -> tuple[str, int] | None:
    """Return (segment id, live document count) of a segment reader, or None for other readers."""
    segment = getattr(reader, "segment", None)
    if segment is None or not callable(segment):
        return None
    found = segment()
    if found is None:
        return None
    return (found.segment_id(), reader.doc_count())


def _docs_with_terms(reader: Any, field_name: str, terms: Iterable[str]) -> set[int]:
    """Return the live documents of one segment that contain any of ``terms`` in ``field_name``."""
    found: set[int] = set()
    for term in terms:
        if (field_name, term) in reader:
            found.update(reader.postings(field_name, term).all_ids())
    return found


def _supported_results(criteria: Any, agent: Any) -> list[bool]:
    """Return one bool per non-empty user, group and role condition of ``criteria``."""
    results = []
    if criteria.users:
        results.append(agent.sys_id in criteria.users)
    if criteria.groups:
        results.append(bool(criteria.groups & agent.groups))
    if criteria.roles:
        results.append(bool(criteria.roles & agent.roles))
    return results


def _bypasses_base_criteria(agent: Any, base: Any) -> bool:
    if BYPASS_ROLES & set(agent.roles):
        return True
    if base.owner and base.owner == agent.sys_id:
        return True
    return agent.sys_id in base.kb_managers


def _agent_key(agent: Any) -> tuple:
    return (agent.sys_id, frozenset(agent.roles), frozenset(agent.groups))


def _doc_rules(doc: Any) -> tuple[str, list[str], list[str]]:
    """Return (knowledge base sys_id, can-read ids, cannot-read ids) of an article."""
    if isinstance(doc, Mapping):
        kb_sys_id = doc.get("kb") or doc.get("kb_sys_id") or ""
        can_read, cannot_read = doc.get("can_read"), doc.get("cannot_read")
    else:
        kb_sys_id = doc.kb_sys_id
        can_read, cannot_read = doc.can_read, doc.cannot_read
    return kb_sys_id, _as_list(can_read), _as_list(cannot_read)


def _as_list(value: Any) -> list[str]:
    """Read a criteria list stored as a list or as a space- or comma-separated string."""
    if not value:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return [str(part) for part in value]


def _index_terms(index: Any, field_name: str) -> list[str]:
    """Return every term of ``field_name`` stored in a KnowledgeIndex or a Whoosh index.

    The lexicon may still list terms of deleted documents until segments
    merge; extra cannot-read ids only deny access to articles that are gone.
    """
    # TODO: use a public KnowledgeIndex method for this once it has one.
    shared_searcher = getattr(index, "_searcher", None)
    if shared_searcher is not None:
        # Reuse the index's open searcher: opening another reader on a
        # 10,000-article index costs about 45 MB of heap that stays allocated.
        return [_decode(term) for term in shared_searcher().reader().lexicon(field_name)]
    with index.reader() as reader:
        return [_decode(term) for term in reader.lexicon(field_name)]


def _decode(term: Any) -> str:
    return term.decode("utf-8") if isinstance(term, bytes) else str(term)
