"""The knowledge index: Whoosh on disk, with atomic rebuilds and start-up checks.

Layout under ``index.path``::

    current              JSON {"generation": "gen-...", "schema": "<version>"}
    gen-<id>/            one complete Whoosh index; ``current`` names the live one

``rebuild`` writes a new generation next to the live one and switches
``current`` (an atomic rename) only once the new one is committed, so the old
index serves searches until then. At start-up an index that cannot be
opened or read, or whose stored schema version differs from this code's, is
replaced by an empty one with a WARNING, and ``reset_reason`` is set so the
caller runs a full sync.

Whoosh allows one writer per index; a writer waits ``index.lock_timeout``
seconds for the lock and then raises ``IndexBusy``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from whoosh import fields as wf
from whoosh import highlight, query as wq, scoring
from whoosh.analysis import RegexTokenizer
from whoosh.filedb.filestore import FileStorage
from whoosh.index import LockError

from knowledge.candidates import CandidateDocs, CandidateIndex
from knowledge.documents import ArticleDoc
from knowledge.errors import IndexBusy, KnowledgeError
from knowledge.ranking import (
    WeightedTerm,
    combined_prior,
    explain_hit,
    plan_query,
    prior_factors,
    query_terms,
    score_passage,
)
from knowledge.rescoring import TextScore, TextScorer
from knowledge.text import Passage, build_analyzer
from knowledge.visibility import VisibilityFilter

logger = logging.getLogger(__name__)

# Bump when the fields below change, so existing indexes are rebuilt.
SCHEMA_VERSION = 4
ANYONE = "__anyone__"
POINTER_FILE = "current"
SNIPPET_CHARS = 240
# Above this many articles written since the last candidate snapshot (during
# a full sync), a search skips the candidate stage and runs the full query,
# because resolving that many sys_ids costs more than the stage saves.
MAX_DIRTY_CANDIDATES = 1000
# Segments a batch commit leaves unmerged before a commit merges the small ones.
MAX_UNMERGED_SEGMENTS = 8


# The text fields hold analyzed terms, space-separated; see build_schema.
TERM_FIELDS = ("title", "meta", "headings", "body")
# The stored original text of the fields shown to agents.
TEXT_FIELDS = {"title": "title_text", "meta": "meta_text", "body": "body_text"}


def build_schema() -> wf.Schema:
    """Return the Whoosh schema.

    The text fields are indexed from terms that ``to_fields`` analyzed
    already, split on spaces, and store those terms: the second search
    stage (``knowledge.rescoring``) and the candidate snapshot read them
    instead of analyzing every article again. The original text is stored
    in the ``*_text`` fields.
    """
    terms = RegexTokenizer(r"\S+")
    return wf.Schema(
        sys_id=wf.ID(stored=True, unique=True),
        number=wf.ID(stored=True),
        title=wf.TEXT(stored=True, analyzer=terms),
        meta=wf.TEXT(stored=True, analyzer=terms),
        headings=wf.TEXT(stored=True, analyzer=terms),
        body=wf.TEXT(stored=True, analyzer=terms),
        title_text=wf.STORED(),
        meta_text=wf.STORED(),
        body_text=wf.STORED(),
        kb=wf.ID(stored=True),
        kb_title=wf.STORED(),
        category=wf.ID(stored=True),
        can_read=wf.KEYWORD(stored=True, commas=True),
        cannot_read=wf.KEYWORD(stored=True, commas=True),
        updated_on=wf.DATETIME(stored=True),
        helpful_ratio=wf.STORED(),
        attach_count=wf.STORED(),
        passages=wf.STORED(),
    )


def schema_fingerprint(analyzer_name: str) -> str:
    """Return the stored schema version: the field layout version plus the analyzer."""
    return f"{SCHEMA_VERSION}:{analyzer_name}"


@dataclass
class SearchHit:
    """One ranked article with an HTML-safe snippet and, on request, its score components."""

    sys_id: str
    number: str
    title: str
    snippet_html: str
    score: float
    kb_sys_id: str
    kb_title: str
    updated_on: datetime | None
    explain: dict[str, Any] | None = None


@dataclass
class PassageHit:
    """One passage of a ranked article, the unit the assistant cites."""

    sys_id: str
    number: str
    title: str
    kb_sys_id: str
    heading: str
    text: str
    position: int
    score: float
    article_score: float


class MarkFormatter(highlight.Formatter):
    """Format highlights as HTML-escaped text with matched terms in ``<mark>`` elements."""

    between = " … "

    def _text(self, text: str) -> str:
        return highlight.htmlescape(text, quote=False)

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return "<mark>" + highlight.htmlescape(highlight.get_text(text, token, replace), quote=False) + "</mark>"

    def format(self, fragments: list[Any], replace: bool = False) -> str:
        """Join the fragments, with an ellipsis where the first starts or the last ends inside a line."""
        if not fragments:
            return ""
        snippet = self.between.join(self.format_fragment(fragment, replace=replace) for fragment in fragments)
        text = fragments[0].text
        if fragments[0].startchar > 0 and text[fragments[0].startchar - 1] != "\n":
            snippet = "… " + snippet
        if fragments[-1].endchar < len(text) and text[fragments[-1].endchar] != "\n":
            snippet += " …"
        return snippet


def to_fields(doc: ArticleDoc, analyzer: Any) -> dict[str, Any]:
    """Map an ``ArticleDoc`` to the index fields, analyzing its text with ``analyzer``."""
    updated_on = doc.updated_on
    if updated_on.tzinfo is not None:
        # Whoosh stores naive datetimes, so they are kept in UTC.
        updated_on = updated_on.astimezone(timezone.utc).replace(tzinfo=None)
    return {
        "sys_id": doc.sys_id,
        "number": doc.number,
        "title": analyzed_terms(analyzer, doc.title),
        "meta": analyzed_terms(analyzer, doc.meta),
        "headings": analyzed_terms(analyzer, doc.headings),
        "body": analyzed_terms(analyzer, doc.body),
        "title_text": doc.title,
        "meta_text": doc.meta,
        "body_text": doc.body,
        "kb": doc.kb_sys_id,
        "kb_title": doc.kb_title,
        "category": doc.category,
        "can_read": ",".join(doc.can_read) if doc.can_read else ANYONE,
        "cannot_read": ",".join(doc.cannot_read),
        "updated_on": updated_on,
        "helpful_ratio": doc.helpful_ratio,
        "attach_count": doc.attach_count,
        "passages": json.dumps([passage.to_dict() for passage in doc.passages]),
    }


def analyzed_terms(analyzer: Any, text: str) -> str:
    """Return the terms ``analyzer`` indexes for ``text``, in order, separated by spaces."""
    return " ".join(token.text for token in analyzer(text, mode="index"))


def public_fields(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Return stored fields as callers read them: the original text under title, meta and body."""
    result = {name: value for name, value in stored.items() if name not in TERM_FIELDS}
    for name, stored_name in TEXT_FIELDS.items():
        result[name] = result.pop(stored_name, "") or ""
    return result


@dataclass
class Scored:
    """One matching article of a search: its stored fields, text score and priors."""

    stored: dict[str, Any]
    text: TextScore
    prior: float = 1.0
    factors: dict[str, float] | None = None

    @property
    def score(self) -> float:
        return self.text.total * self.prior


class KnowledgeIndex:
    """Store, search and rebuild the indexed knowledge articles in one directory."""

    def __init__(self, path: str | os.PathLike[str], *, settings: Any) -> None:
        self.root = Path(path)
        self.settings = settings
        self.analyzer_name = settings.index.analyzer
        self.analyzer = build_analyzer(self.analyzer_name)
        self.schema = build_schema()
        self.fingerprint = schema_fingerprint(self.analyzer_name)
        self.reset_reason: str | None = None
        self._lock = threading.RLock()
        self._weighting = scoring.BM25F(B=settings.ranking.bm25_b, K1=settings.ranking.bm25_k1)
        self._open()
        # The stored title, meta and body fields hold analyzed terms already.
        self._candidates = CandidateIndex(self._stored_documents, str.split,
                                          rebuild_delay=settings.index.candidate_rebuild_delay)
        # Built before the first search, so searches at start-up are fast too.
        self._candidates.rebuild_now()

    # -- opening, start-up checks and generations ---------------------------------

    def _open(self) -> None:
        """Open the live generation, or replace an unreadable or outdated one with an empty index."""
        self.root.mkdir(parents=True, exist_ok=True)
        pointer = self._read_pointer()
        if pointer is None:
            self._reset("no index exists yet", warn=False)
            return
        if pointer.get("schema") != self.fingerprint:
            self._reset(f"stored schema version {pointer.get('schema')!r} differs from {self.fingerprint!r}")
            return
        generation = self.root / str(pointer.get("generation", ""))
        try:
            ix = _storage(generation).open_index()
            _verify(ix)
        except Exception as error:  # noqa: BLE001 - any failure to read means a damaged index
            self._reset(f"the index at {generation} cannot be read ({type(error).__name__}: {error})")
            return
        self._use(ix, generation.name)

    def _read_pointer(self) -> dict[str, Any] | None:
        try:
            pointer = json.loads((self.root / POINTER_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            return {"schema": f"unreadable pointer file ({error})"}
        return pointer if isinstance(pointer, dict) else {"schema": "invalid pointer file"}

    def _reset(self, reason: str, *, warn: bool = True) -> None:
        """Switch to a new empty generation, recording why for the caller's full sync."""
        if warn:
            logger.warning("Rebuilding the knowledge index at %s empty because %s; a full sync is needed.",
                           self.root, reason)
        self.reset_reason = reason
        name, ix = self._create_generation()
        self._switch(name, ix)

    def _create_generation(self) -> tuple[str, Any]:
        name = f"gen-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        directory = self.root / name
        directory.mkdir()
        return name, _storage(directory).create_index(self.schema)

    def _switch(self, name: str, ix: Any) -> None:
        """Point ``current`` at generation ``name`` atomically, then use it and drop older ones."""
        temporary = self.root / f".{POINTER_FILE}.{uuid.uuid4().hex[:8]}"
        temporary.write_text(json.dumps({"generation": name, "schema": self.fingerprint}), encoding="utf-8")
        os.replace(temporary, self.root / POINTER_FILE)
        self._use(ix, name)
        self._remove_other_generations(name)

    def _use(self, ix: Any, name: str) -> None:
        with self._lock:
            self._ix = ix
            self._generation = name
            # Searchers still in use by other threads keep their open files;
            # the replaced searcher is closed when it is garbage-collected.
            self._searcher_obj = ix.searcher(weighting=self._weighting)

    def _remove_other_generations(self, keep: str) -> None:
        for child in self.root.iterdir():
            if child.is_dir() and child.name.startswith("gen-") and child.name != keep:
                shutil.rmtree(child, ignore_errors=True)

    @property
    def generation(self) -> str:
        """Return the name of the live generation directory."""
        return self._generation

    def _follow_rebuild(self) -> bool:
        """Switch to the generation named by ``current`` if another process rebuilt the index."""
        pointer = self._read_pointer() or {}
        generation = pointer.get("generation")
        if generation in (None, self._generation) or pointer.get("schema") != self.fingerprint:
            return False
        with self._lock:
            self._use(_storage(self.root / generation).open_index(), generation)
        logger.info("Switched to knowledge index generation %s, rebuilt by another process.", generation)
        return True

    def _searcher(self) -> Any:
        """Return a searcher on the latest commit, following a rebuild done by another process."""
        with self._lock:
            changed = self._follow_rebuild()
            if not changed and not self._searcher_obj.up_to_date():
                self._refresh()
                changed = True
            if changed:
                # Another process wrote articles whose sys_ids this one does not know.
                self._candidates.request_rebuild(now=True, invalidate=True)
            return self._searcher_obj

    # -- writing -------------------------------------------------------------------

    def _writer(self, ix: Any = None) -> Any:
        """Open a writer on ``ix`` or the live generation, waiting up to ``index.lock_timeout``."""
        if ix is None:
            # Never write into a generation that another process's rebuild replaced.
            self._follow_rebuild()
        timeout = self.settings.index.lock_timeout
        try:
            return (ix or self._ix).writer(timeout=timeout, delay=min(0.1, timeout))
        except LockError:
            raise IndexBusy(
                f"The knowledge index at {self.root} is locked by another writer for more than "
                f"{timeout:g} s; retry later or raise index.lock_timeout.",
                path=str(self.root),
            ) from None

    def upsert(self, docs: Iterable[ArticleDoc]) -> int:
        """Add or replace documents by sys_id in one commit; return how many were written."""
        writer = self._writer()
        written = []
        try:
            for doc in docs:
                writer.update_document(**to_fields(doc, self.analyzer))
                written.append(doc.sys_id)
        except BaseException:
            writer.cancel()
            raise
        self._commit(writer)
        self._refresh()
        self._candidates.request_rebuild(written)
        logger.info("Upserted %d articles into the knowledge index.", len(written))
        return len(written)

    def delete(self, sys_ids: Iterable[str]) -> int:
        """Delete documents by sys_id in one commit; return how many were deleted."""
        writer = self._writer()
        count = 0
        try:
            for sys_id in sys_ids:
                count += writer.delete_by_term("sys_id", sys_id)
        except BaseException:
            writer.cancel()
            raise
        self._commit(writer)
        self._refresh()
        # Deleted articles need no dirty mark because the second stage drops them.
        self._candidates.request_rebuild()
        logger.info("Deleted %d articles from the knowledge index.", count)
        return count

    def _commit(self, writer: Any) -> None:
        """Commit without merging until ``MAX_UNMERGED_SEGMENTS`` segments exist.

        Whoosh's default merge policy rewrites growing segments on most
        commits, which made a full sync of twenty 500-article batches take
        160 s instead of 40 s. Merging every few commits keeps that cost low
        and the segment count, which every search pays for, bounded.
        """
        merge = len(self._ix._segments()) >= MAX_UNMERGED_SEGMENTS
        writer.commit(merge=merge)

    def rebuild(self, docs: Iterable[ArticleDoc]) -> int:
        """Index ``docs`` into a new generation and switch to it only once it is complete.

        If anything fails before the switch, the new generation is removed
        and the old one keeps serving. Writes committed to the old
        generation while the rebuild runs are not carried over, so run the
        rebuild from the same job that would make them (the full sync).
        """
        name, ix = self._create_generation()
        try:
            writer = self._writer(ix)
            count = 0
            try:
                for doc in docs:
                    writer.add_document(**to_fields(doc, self.analyzer))
                    count += 1
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
        except BaseException:
            ix.close()
            shutil.rmtree(self.root / name, ignore_errors=True)
            logger.warning("Rebuild of the knowledge index at %s failed; the old index keeps serving.", self.root)
            raise
        with self._lock:
            self._switch(name, ix)
        self._candidates.rebuild_now(invalidate=True)
        logger.info("Rebuilt the knowledge index at %s with %d articles (%s).", self.root, count, name)
        return count

    def _refresh(self) -> None:
        """Replace the searcher with one on the latest commit.

        Whoosh-Reloaded 2.7.5's ``Searcher.refresh()`` merges the old reader's
        segments into the new list, so a replaced or deleted document stays
        visible. Opening a new searcher avoids that. The old searcher is not
        closed because another thread may still read from it; its files are
        closed when it is garbage-collected.
        """
        with self._lock:
            self._searcher_obj = self._ix.searcher(weighting=self._weighting)

    # -- candidate stage -----------------------------------------------------------

    def _stored_documents(self) -> Iterator[dict[str, Any]]:
        """Yield the stored fields of every live article from a searcher of its own."""
        with self._lock:
            ix = self._ix
        # A separate searcher reads its own files, so searches need not wait.
        with ix.searcher() as searcher:
            yield from searcher.all_stored_fields()

    def wait_for_candidates(self, timeout: float | None = None) -> bool:
        """Wait until the candidate snapshot includes every write; return whether it does."""
        return self._candidates.wait_until_current(timeout)

    def _pick(self, terms: list[WeightedTerm], filter: wq.Query | None,  # noqa: A002
              count: int) -> CandidateDocs | None:
        """Return the candidate articles for the terms, or None when the full query must run.

        The full query runs while no snapshot exists, after more than
        ``MAX_DIRTY_CANDIDATES`` writes since the snapshot, and with a
        filter other than a ``VisibilityFilter``. A ``VisibilityFilter`` is
        applied to the candidates themselves, so hidden articles are never
        scored, counted or highlighted.
        """
        if filter is not None and not isinstance(filter, VisibilityFilter):
            return None
        picked = self._candidates.candidates(terms, count, filter)
        if picked is None or len(picked[1]) > MAX_DIRTY_CANDIDATES:
            return None
        best, dirty = picked
        return CandidateDocs([*best, *dirty], filter)

    def _idf(self, searcher: Any, terms: list[WeightedTerm]) -> dict[str, float] | None:
        """Return the body-field idf of each term when a ranking cap needs it, else None."""
        ranking = self.settings.ranking
        text_count = sum(1 for term in terms if term.in_text)
        terms_capped = 0 < ranking.max_query_terms < len(terms)
        pairs_capped = 0 < ranking.proximity_max_pairs < text_count - 1
        if not (terms_capped or pairs_capped):
            return None
        return {term.text: searcher.idf("body", term.text) for term in terms}

    def _rank(self, terms: list[WeightedTerm], filter: wq.Query | None,  # noqa: A002
              count: int) -> tuple[Any, list[Scored]]:
        """Return (searcher, the best ``count`` matching articles with priors applied, best first).

        The candidates are scored by ``knowledge.rescoring``; without
        candidates Whoosh runs the full query to find the matches, which are
        then scored the same way. Call with ``self._lock`` held.
        """
        ranking = self.settings.ranking
        docs = self._pick(terms, filter, count)
        searcher = self._searcher()
        plan = plan_query(terms, ranking, idf=self._idf(searcher, terms))
        scorer = TextScorer(searcher, plan, b=ranking.bm25_b, k1=ranking.bm25_k1)
        matches = []
        if docs is None:
            for hit in searcher.search(plan.combined(), filter=filter, limit=count):
                stored = hit.fields()
                matches.append((hit.docnum, Scored(stored, scorer.score(searcher, hit.docnum, stored))))
        else:
            for leaf, offset in searcher.leaf_searchers():
                for docnum in docs.docnums(leaf):
                    stored = leaf.stored_fields(docnum)
                    text = scorer.score(leaf, docnum, stored)
                    if text.total > 0:
                        matches.append((offset + docnum, Scored(stored, text)))
        # Whoosh's order: best text score first, then document number.
        matches.sort(key=lambda item: (-item[1].text.total, item[0]))
        return searcher, self._apply_priors([scored for _, scored in matches[:count]])

    # -- reading -------------------------------------------------------------------

    # Whoosh searchers read segment files through shared file objects, so
    # reads are serialized with self._lock. Searching is CPU-bound Python,
    # so under the GIL this costs little throughput.

    def ids(self) -> set[str]:
        """Return the sys_ids of all indexed articles."""
        with self._lock:
            return {fields["sys_id"] for fields in self._searcher().all_stored_fields()}

    def field_terms(self, field_name: str) -> list[str]:
        """Return every indexed term of ``field_name`` (e.g. the criteria sys_ids in ``cannot_read``).

        Terms of deleted documents may remain until Whoosh merges segments.
        """
        with self._lock:
            return [_decode(term) for term in self._searcher().reader().lexicon(field_name)]

    def get(self, sys_id: str) -> dict[str, Any] | None:
        """Return the stored fields of one article (passages decoded), or None if absent."""
        with self._lock:
            stored = self._searcher().document(sys_id=sys_id)
        if stored is None:
            return None
        result = public_fields(stored)
        result["passages"] = [Passage(**item) for item in json.loads(result.get("passages") or "[]")]
        result["can_read"] = _split_list(result.get("can_read"), drop=ANYONE)
        result["cannot_read"] = _split_list(result.get("cannot_read"))
        result["updated_on"] = _aware(result.get("updated_on"))
        return result

    def passages(self, sys_id: str) -> list[Passage]:
        """Return the passages of one article in order, or an empty list if it is absent."""
        stored = self.get(sys_id)
        return stored["passages"] if stored else []

    def count(self, filter: wq.Query | None = None) -> int:  # noqa: A002 - name fixed by the contract
        """Return how many articles are indexed, or how many pass ``filter``."""
        with self._lock:
            searcher = self._searcher()
            if filter is None:
                return searcher.doc_count()
            return len(searcher.search(wq.Every(), filter=filter, limit=1))

    def search(
        self,
        query_text: str,
        *,
        filter: wq.Query | None = None,  # noqa: A002 - name fixed by the contract
        limit: int = 10,
        explain: bool = False,
        boosts: Mapping[str, float] | None = None,
    ) -> list[SearchHit]:
        """Rank the articles that match ``query_text`` and pass ``filter``; best first.

        ``filter`` (from ``knowledge.visibility``) is applied before scoring,
        so hidden articles are never scored, counted or highlighted.
        ``boosts`` maps extra words to term weights (see ``query_terms``).
        """
        terms = query_terms(query_text, self.analyzer, boosts,
                            instruction_weight=self.settings.ranking.instruction_weight)
        if not terms or limit <= 0:
            return []
        with self._lock:
            _, ranked = self._rank(terms, filter, max(limit, self.settings.ranking.candidates))
        highlighted = {term.text for term in terms}
        return [self._to_hit(scored, highlighted, explain) for scored in ranked[:limit]]

    def search_passages(
        self,
        query_text: str,
        *,
        filter: wq.Query | None = None,  # noqa: A002 - same meaning as in search()
        limit: int = 5,
        boosts: Mapping[str, float] | None = None,
        articles: int = 10,
    ) -> list[PassageHit]:
        """Rank the passages of the best ``articles`` articles for ``query_text``; best first.

        A passage's score is its own BM25 score (heading and text, with the
        body field's IDF) times its article's score relative to the best
        article. A strong passage in a weak article therefore ranks below an
        equally strong one in the best article.
        """
        terms = query_terms(query_text, self.analyzer, boosts,
                            instruction_weight=self.settings.ranking.instruction_weight)
        if not terms or limit <= 0:
            return []
        with self._lock:
            searcher, ranked = self._rank(terms, filter, max(articles, self.settings.ranking.candidates))
            idf = {term.text: searcher.idf("body", term.text) for term in terms}
        candidates = [(public_fields(scored.stored), scored.score) for scored in ranked[:articles]]
        return self._rank_passages(candidates, terms, idf)[:limit]

    def _rank_passages(self, candidates: list[tuple[dict[str, Any], float]], terms: list[Any],
                       idf: dict[str, float]) -> list[PassageHit]:
        analyzer = self.analyzer
        rows = []
        for stored, article_score in candidates:
            for item in json.loads(stored.get("passages") or "[]"):
                tokens = [token.text for token in analyzer(item["heading"] + "\n" + item["text"])]
                rows.append((stored, article_score, item, tokens))
        if not rows:
            return []
        average_length = sum(len(tokens) for *_, tokens in rows) / len(rows)
        best_article = max(score for _, score, _, _ in rows) or 1.0
        hits = []
        for stored, article_score, item, tokens in rows:
            own = score_passage(tokens, terms, idf, average_length, self.settings.ranking)
            hits.append(PassageHit(
                sys_id=stored["sys_id"], number=stored.get("number", ""), title=stored.get("title", ""),
                kb_sys_id=stored.get("kb", ""), heading=item["heading"], text=item["text"],
                position=item["position"], score=own * article_score / best_article, article_score=article_score,
            ))
        hits.sort(key=lambda hit: (-hit.score, hit.sys_id, hit.position))
        return hits

    def _apply_priors(self, matches: list[Scored]) -> list[Scored]:
        """Multiply each match's text score by its capped prior factor and re-sort."""
        now = datetime.now(timezone.utc)
        for scored in matches:
            scored.factors = prior_factors(scored.stored, self.settings.ranking, now)
            scored.prior = combined_prior(scored.factors, self.settings.ranking)
        return sorted(matches, key=lambda scored: (-scored.score, scored.stored["sys_id"]))

    def _to_hit(self, scored: Scored, highlighted: set[str], explain: bool) -> SearchHit:
        stored = public_fields(scored.stored)
        details = None
        if explain:
            details = explain_hit(scored.text.per_field, scored.text.proximity, scored.factors or {},
                                  scored.prior, scored.text.matched, scored.score)
        return SearchHit(
            sys_id=stored["sys_id"],
            number=stored.get("number", ""),
            title=stored.get("title", ""),
            snippet_html=self._snippet(stored.get("body", ""), highlighted),
            score=scored.score,
            kb_sys_id=stored.get("kb", ""),
            kb_title=stored.get("kb_title", ""),
            updated_on=_aware(stored.get("updated_on")),
            explain=details,
        )

    def _snippet(self, body: str, terms: set[str]) -> str:
        """Return up to two body fragments with the query terms marked, or the escaped start of the body."""
        # The steps of Whoosh's Highlighter.highlight_hit when it re-analyzes
        # the text. The analyzer reuses one Token object for every word, so
        # matched tokens are copied before the fragmenter keeps them. Without
        # the copy, every kept match would become the body's last word.
        tokens = self.analyzer(body, positions=True, chars=True, mode="index", removestops=False)
        matched = (token.copy() if token.matched else token for token in highlight.set_matched_filter(tokens, terms))
        tokens = highlight.Highlighter._merge_matched_tokens(matched)
        fragmenter = highlight.PinpointFragmenter(maxchars=SNIPPET_CHARS, surround=60, autotrim=True)
        fragments = highlight.top_fragments(fragmenter.fragment_tokens(body, tokens), 2,
                                            highlight.BasicFragmentScorer(), highlight.FIRST, minscore=1)
        snippet = MarkFormatter().format(_merge_overlapping(fragments))
        if snippet:
            return snippet
        start = body[:SNIPPET_CHARS]
        return highlight.htmlescape(start + ("…" if len(body) > SNIPPET_CHARS else ""), quote=False)

    def close(self) -> None:
        """Close the searcher and the index files; closing twice is harmless."""
        self._candidates.close()
        with self._lock:
            if self._searcher_obj is not None:
                self._searcher_obj.close()
                self._ix.close()
                self._searcher_obj = None


def _storage(directory: Path) -> FileStorage:
    """Return the file storage of one generation, read without memory-mapping.

    Whoosh maps whole segment files into memory by default, so every page
    read once (the start-up check reads them all) stays in the process's
    resident memory: about 290 MB with 50,000 articles. Plain reads leave
    those pages in the kernel's shared page cache instead.
    """
    return FileStorage(str(directory), supports_mmap=False)


def _verify(ix: Any) -> None:
    """Read the whole index once, so a damaged segment fails at start-up, not mid-search."""
    with ix.searcher() as searcher:
        reader = searcher.reader()
        for _ in reader.all_stored_fields():
            pass
        for fieldname in ("sys_id", "body"):
            for _ in reader.lexicon(fieldname):
                pass


def _merge_overlapping(fragments: list[Any]) -> list[Any]:
    """Join fragments whose text overlaps, so a snippet never shows the same words twice."""
    merged: list[Any] = []
    for fragment in sorted(fragments, key=lambda item: item.startchar):
        if merged and fragment.startchar <= merged[-1].endchar:
            last = merged[-1]
            matches = {match.startchar: match for match in [*last.matches, *fragment.matches]}
            merged[-1] = highlight.Fragment(last.text, [matches[start] for start in sorted(matches)],
                                            last.startchar, max(last.endchar, fragment.endchar))
        else:
            merged.append(fragment)
    return merged


def _split_list(value: str | None, *, drop: str | None = None) -> list[str]:
    return [item for item in (value or "").split(",") if item and item != drop]


def _aware(value: datetime | None) -> datetime | None:
    """Mark a stored naive datetime (always UTC) as UTC."""
    return value.replace(tzinfo=timezone.utc) if value is not None else None


def _decode(text: Any) -> str:
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)
