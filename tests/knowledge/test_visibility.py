"""Tests of article visibility: user criteria rules, evaluated directly and inside searches."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from config.settings import settings_for_tests
from integration.schemas import Agent, KnowledgeBase, UserCriteria
from knowledge.documents import ArticleDoc
from knowledge.index import KnowledgeIndex
from knowledge.visibility import Outcome, Visibility, VisibilityRules


def sys_id(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def agent(name: str, *, roles=(), groups=()) -> Agent:
    return Agent(
        sys_id=sys_id(name),
        user_name=name,
        name=name.title(),
        email=f"{name}@example.com",
        active=True,
        roles=frozenset(roles),
        groups=frozenset(sys_id(group) for group in groups),
        group_names=frozenset(groups),
    )


AGENTS = {
    "alice": agent("alice", roles=["itil"], groups=["network"]),
    "bob": agent("bob", roles=["itil", "sn_customerservice_agent"], groups=["hr"]),
    "carol": agent("carol", roles=["itil"]),
    "dave": agent("dave", groups=["network"]),
    "erin": agent("erin", roles=["knowledge_admin"]),
    "grace": agent("grace", roles=["sn_customerservice_agent"], groups=["network"]),
}


def criteria(name: str, *, users=(), groups=(), roles=(), match_all=False, advanced=False,
             active=True, unevaluated=()) -> UserCriteria:
    return UserCriteria(
        sys_id=sys_id(name),
        name=name,
        users=frozenset(sys_id(user) for user in users),
        groups=frozenset(sys_id(group) for group in groups),
        roles=frozenset(roles),
        match_all=match_all,
        advanced=advanced,
        active=active,
        script="answer = true;" if advanced else "",
        unevaluated=frozenset(unevaluated),
    )


CRITERIA = {
    item.name: item
    for item in [
        criteria("only_alice", users=["alice"]),
        criteria("network_group", groups=["network"]),
        criteria("csm_role", roles=["sn_customerservice_agent"]),
        criteria("network_and_itil", groups=["network"], roles=["itil"], match_all=True),
        criteria("network_and_csm", groups=["network"], roles=["sn_customerservice_agent"], match_all=True),
        criteria("alice_or_department", users=["alice"], unevaluated=["department"]),
        criteria("department_only", unevaluated=["department"]),
        criteria("alice_and_department", users=["alice"], unevaluated=["department"], match_all=True),
        criteria("scripted", users=["alice"], advanced=True),
        criteria("inactive_alice", users=["alice"], active=False),
    ]
}
# Readers of the public control knowledge base, which needs criteria of its
# own so it stays readable when block_access_with_no_user_criteria is on.
EVERYONE = criteria("everyone", users=list(AGENTS))


@dataclass
class Case:
    """One visibility rule case: knowledge base and article criteria, and who may read the article."""

    kb_can: list[str] = field(default_factory=list)
    kb_cannot: list[str] = field(default_factory=list)
    article_can: list[str] = field(default_factory=list)
    article_cannot: list[str] = field(default_factory=list)
    owner: str = ""
    managers: list[str] = field(default_factory=list)
    kb_active: bool = True
    block_without_criteria: bool = False
    visible_to: list[str] = field(default_factory=list)
    hidden_from: list[str] = field(default_factory=list)
    counted: str | None = None
    # Agents whose evaluation hits ``counted``; None means every agent in hidden_from.
    counted_for: list[str] | None = None


CASES = {
    "no_criteria": Case(visible_to=["alice", "bob", "dave"]),
    "block_no_criteria": Case(block_without_criteria=True, hidden_from=["alice", "bob"]),
    "block_no_criteria_knowledge_admin": Case(block_without_criteria=True, visible_to=["erin"]),
    "block_no_criteria_owner": Case(block_without_criteria=True, owner="carol", visible_to=["carol"],
                                    hidden_from=["alice"]),
    "kb_can_user": Case(kb_can=["only_alice"], visible_to=["alice"], hidden_from=["bob", "dave"]),
    "kb_can_group": Case(kb_can=["network_group"], visible_to=["alice", "dave"], hidden_from=["bob"]),
    "kb_can_role": Case(kb_can=["csm_role"], visible_to=["bob", "grace"], hidden_from=["alice"]),
    "kb_can_any_of_two": Case(kb_can=["only_alice", "csm_role"], visible_to=["alice", "bob"],
                              hidden_from=["dave"]),
    "kb_cannot_wins_over_can": Case(kb_can=["network_group"], kb_cannot=["only_alice"],
                                    visible_to=["dave"], hidden_from=["alice"]),
    "kb_cannot_only": Case(kb_cannot=["csm_role"], visible_to=["alice"], hidden_from=["bob"]),
    "kb_can_article_cannot": Case(kb_can=["network_group"], article_cannot=["only_alice"],
                                  visible_to=["dave"], hidden_from=["alice"]),
    "article_can_role": Case(article_can=["csm_role"], visible_to=["bob"], hidden_from=["alice"]),
    "kb_and_article_can_both_needed": Case(kb_can=["network_group"], article_can=["csm_role"],
                                           visible_to=["grace"], hidden_from=["alice", "bob"]),
    "match_all_every_condition_holds": Case(kb_can=["network_and_itil"], visible_to=["alice"],
                                            hidden_from=["dave", "bob"]),
    "match_all_one_condition_fails": Case(kb_can=["network_and_csm"], visible_to=["grace"],
                                          hidden_from=["alice", "bob"]),
    "advanced_can_read_hidden": Case(kb_can=["scripted"], hidden_from=["alice", "bob"],
                                     counted="unsupported_criteria"),
    "advanced_cannot_read_hidden": Case(article_cannot=["scripted"], hidden_from=["alice", "bob"],
                                        counted="unsupported_criteria"),
    "department_or_user_matches_user": Case(kb_can=["alice_or_department"], visible_to=["alice"],
                                            hidden_from=["bob"], counted="unsupported_criteria"),
    "department_cannot_read_hidden": Case(article_cannot=["department_only"], hidden_from=["alice"],
                                          counted="unsupported_criteria"),
    "match_all_with_department": Case(kb_can=["alice_and_department"], hidden_from=["alice", "bob"],
                                      counted="unsupported_criteria", counted_for=["alice"]),
    "knowledge_admin_bypasses_kb": Case(kb_can=["only_alice"], kb_cannot=["department_only"],
                                        visible_to=["erin"], hidden_from=["bob"],
                                        counted="unsupported_criteria"),
    "knowledge_admin_needs_article_can": Case(article_can=["only_alice"], visible_to=["alice"],
                                              hidden_from=["erin"]),
    "manager_bypasses_kb": Case(kb_can=["only_alice"], managers=["dave"], visible_to=["dave", "alice"],
                                hidden_from=["bob"]),
    "owner_bypasses_kb_cannot": Case(kb_cannot=["network_group"], owner="dave", visible_to=["dave"],
                                     hidden_from=["alice"]),
    "missing_kb_can_criteria": Case(kb_can=["never_loaded"], hidden_from=["alice"],
                                    counted="missing_criteria"),
    "missing_article_cannot_criteria": Case(article_cannot=["never_loaded"], hidden_from=["alice", "erin"],
                                            counted="missing_criteria"),
    "inactive_criteria_grants_nothing": Case(kb_can=["inactive_alice"], hidden_from=["alice"]),
    "inactive_kb_hidden": Case(kb_active=False, hidden_from=["alice", "erin"]),
}

PUBLIC_KB = sys_id("kb-public")
CASE_KB = sys_id("kb-case")
RESTRICTED = sys_id("restricted-article")
PUBLIC = sys_id("public-article")


def rules_for(case: Case) -> VisibilityRules:
    """Build rules holding only the criteria the case names, so counters stay specific."""
    names = case.kb_can + case.kb_cannot + case.article_can + case.article_cannot
    loaded = {CRITERIA[name].sys_id: CRITERIA[name] for name in names if name in CRITERIA}
    loaded[EVERYONE.sys_id] = EVERYONE
    bases = [
        KnowledgeBase(sys_id=PUBLIC_KB, title="IT", description="", owner="", kb_managers=[], active=True,
                      can_read_user_criteria=[EVERYONE.sys_id]),
        KnowledgeBase(
            sys_id=CASE_KB,
            title="Restricted",
            description="",
            owner=sys_id(case.owner) if case.owner else "",
            kb_managers=[sys_id(name) for name in case.managers],
            active=case.kb_active,
            can_read_user_criteria=[sys_id(name) for name in case.kb_can],
            cannot_read_user_criteria=[sys_id(name) for name in case.kb_cannot],
        ),
    ]
    return VisibilityRules(knowledge_bases={base.sys_id: base for base in bases}, criteria=loaded)


def articles_for(case: Case) -> list[ArticleDoc]:
    updated = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
    restricted = ArticleDoc.from_html(
        sys_id=RESTRICTED,
        title="Quokka payroll override procedure",
        html="<p>The quokka override resets zephyr payroll locks for executives.</p>",
        number="KB0099001",
        kb_sys_id=CASE_KB,
        kb_title="Restricted",
        updated_on=updated,
        can_read=[sys_id(name) for name in case.article_can],
        cannot_read=[sys_id(name) for name in case.article_cannot],
    )
    public = ArticleDoc.from_html(
        sys_id=PUBLIC,
        title="Zephyr printer setup",
        html="<p>Connect the zephyr printer to the office network.</p>",
        number="KB0010001",
        kb_sys_id=PUBLIC_KB,
        kb_title="IT",
        updated_on=updated,
    )
    return [restricted, public]


def settings_for(case: Case, tmp_path):
    return settings_for_tests(
        index={"path": str(tmp_path / "index")},
        knowledge={"block_access_with_no_user_criteria": case.block_without_criteria},
    )


def case_agents(case: Case) -> list[tuple[str, bool]]:
    return [(name, True) for name in case.visible_to] + [(name, False) for name in case.hidden_from]


@pytest.fixture
def index_for(tmp_path):
    opened = []

    def build(case: Case) -> tuple[KnowledgeIndex, object]:
        settings = settings_for(case, tmp_path)
        index = KnowledgeIndex(tmp_path / "index", settings=settings)
        index.upsert(articles_for(case))
        opened.append(index)
        return index, settings

    yield build
    for index in opened:
        index.close()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_can_read_follows_rules(case, tmp_path):
    settings = settings_for(case, tmp_path)
    restricted = articles_for(case)[0]

    for name, expected in case_agents(case):
        visibility = Visibility(rules_for(case), settings)

        assert visibility.can_read(AGENTS[name], restricted) is expected, name
        counted_for = case.hidden_from if case.counted_for is None else case.counted_for
        for counter in ("unsupported_criteria", "missing_criteria"):
            if counter == case.counted and name in counted_for:
                assert visibility.stats[counter] >= 1, name
            elif counter != case.counted:
                assert visibility.stats[counter] == 0, name


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_search_filter_follows_rules(case, index_for):
    index, settings = index_for(case)

    for name, expected in case_agents(case):
        visibility = Visibility(rules_for(case), settings, index=index)
        search_filter = visibility.filter_for(AGENTS[name])
        hits = index.search("quokka zephyr payroll", filter=search_filter)
        ids = [hit.sys_id for hit in hits]

        assert (RESTRICTED in ids) is expected, name
        assert PUBLIC in ids, name
        assert index.count(filter=search_filter) == (2 if expected else 1), name
        if not expected:
            for hit in hits:
                assert "quokka" not in hit.title.lower(), name
                assert hit.number != "KB0099001", name
                assert "quokka" not in hit.snippet_html.lower(), name
                assert "payroll" not in hit.snippet_html.lower(), name


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_can_read_with_stored_fields(case, index_for):
    index, settings = index_for(case)
    stored = index.get(RESTRICTED)

    for name, expected in case_agents(case):
        visibility = Visibility(rules_for(case), settings, index=index)

        assert visibility.can_read(AGENTS[name], stored) is expected, name


def test_unknown_knowledge_base_hidden(tmp_path):
    case = Case()
    settings = settings_for(case, tmp_path)
    orphan = ArticleDoc(sys_id=sys_id("orphan"), title="Orphan", kb_sys_id=sys_id("kb-deleted"))
    visibility = Visibility(rules_for(case), settings)

    assert visibility.can_read(AGENTS["erin"], orphan) is False


def test_unreadable_index_hides_restricted(tmp_path):
    case = Case(article_cannot=["csm_role"])
    settings = settings_for(case, tmp_path)

    class BrokenIndex:
        def reader(self):
            raise OSError("segment file missing")

    visibility = Visibility(rules_for(case), settings, index=BrokenIndex())
    restricted, public = articles_for(case)

    assert visibility.can_read(AGENTS["alice"], restricted) is False
    assert visibility.can_read(AGENTS["alice"], public) is True
    assert visibility.stats["index_terms_failed"] == 1


def test_no_readable_kb_hides_everything(index_for):
    case = Case(kb_can=["only_alice"])
    index, settings = index_for(case)
    rules = rules_for(case)
    public_base = rules.knowledge_bases[PUBLIC_KB]
    locked = VisibilityRules(
        knowledge_bases={
            PUBLIC_KB: KnowledgeBase(**{**public_base.__dict__, "active": False}),
            CASE_KB: rules.knowledge_bases[CASE_KB],
        },
        criteria=rules.criteria,
    )
    visibility = Visibility(locked, settings, index=index)
    search_filter = visibility.filter_for(AGENTS["bob"])

    assert index.search("zephyr", filter=search_filter) == []
    assert index.count(filter=search_filter) == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_filter_cached_until_ttl(tmp_path):
    case = Case(kb_can=["only_alice"])
    settings = settings_for_tests(knowledge={"visibility_cache_ttl": 60})
    clock = FakeClock()
    visibility = Visibility(rules_for(case), settings, clock=clock)

    first = visibility.filter_for(AGENTS["alice"])
    clock.now += 59
    second = visibility.filter_for(AGENTS["alice"])
    clock.now += 2
    third = visibility.filter_for(AGENTS["alice"])

    assert second is first
    assert third is not first
    assert third == first


def test_replace_rules_drops_cache(tmp_path):
    open_case, closed_case = Case(), Case(kb_can=["only_alice"])
    settings = settings_for_tests(knowledge={"visibility_cache_ttl": 3600})
    visibility = Visibility(rules_for(open_case), settings)
    restricted = articles_for(open_case)[0]
    assert visibility.can_read(AGENTS["bob"], restricted) is True

    visibility.replace_rules(rules_for(closed_case))

    assert visibility.can_read(AGENTS["bob"], restricted) is False


def test_unsupported_logged_once_per_period(caplog):
    case = Case(kb_can=["scripted"])
    settings = settings_for_tests(knowledge={"visibility_cache_ttl": 60})
    clock = FakeClock()
    visibility = Visibility(rules_for(case), settings, clock=clock)

    with caplog.at_level(logging.WARNING, logger="knowledge.visibility"):
        for name in ("alice", "bob", "dave"):
            visibility.filter_for(AGENTS[name])
        clock.now += 61
        visibility.filter_for(AGENTS["grace"])

    warnings = [record for record in caplog.records if "scripted" in record.getMessage()]
    assert visibility.stats["unsupported_criteria"] == 4
    assert len(warnings) == 2
    assert CRITERIA["scripted"].sys_id in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("criteria_name", "agent_name", "expected"),
    [
        ("only_alice", "alice", Outcome.MATCH),
        ("only_alice", "bob", Outcome.NO_MATCH),
        ("network_and_itil", "dave", Outcome.NO_MATCH),
        ("alice_or_department", "alice", Outcome.MATCH),
        ("alice_or_department", "bob", Outcome.UNKNOWN),
        ("alice_and_department", "alice", Outcome.UNKNOWN),
        ("alice_and_department", "bob", Outcome.NO_MATCH),
        ("scripted", "alice", Outcome.UNKNOWN),
        ("inactive_alice", "alice", Outcome.NO_MATCH),
    ],
)
def test_evaluate_criteria_outcomes(criteria_name, agent_name, expected):
    settings = settings_for_tests()
    rules = VisibilityRules(knowledge_bases={}, criteria={c.sys_id: c for c in CRITERIA.values()})
    visibility = Visibility(rules, settings)

    assert visibility.evaluate_criteria(CRITERIA[criteria_name].sys_id, AGENTS[agent_name]) is expected


def test_filter_documents_match_query_tree(tmp_path):
    """The cached posting-list path must allow exactly what the Whoosh query tree matches."""
    case = Case(kb_can=["network_group"], article_cannot=["only_alice"])
    settings = settings_for(case, tmp_path)
    index = KnowledgeIndex(tmp_path / "index", settings=settings)
    kinds = [
        {"kb_sys_id": CASE_KB},
        {"kb_sys_id": PUBLIC_KB},
        {"kb_sys_id": PUBLIC_KB, "can_read": [CRITERIA["csm_role"].sys_id]},
        {"kb_sys_id": PUBLIC_KB, "cannot_read": [CRITERIA["only_alice"].sys_id]},
        {"kb_sys_id": sys_id("kb-unknown")},
    ]
    try:
        # Three commits and a deletion leave several segments, one with deletions.
        for batch in range(3):
            index.upsert([
                ArticleDoc(sys_id=sys_id(f"doc-{batch}-{n}"), title=f"Doc {batch} {n}", **kinds[n % len(kinds)])
                for n in range(20)
            ])
        index.delete([sys_id("doc-1-0"), sys_id("doc-1-1")])
        searcher = index._searcher()
        assert len(searcher.subsearchers) > 1

        for name in ("alice", "bob", "dave", "erin", "grace"):
            visibility = Visibility(rules_for(case), settings, index=index)
            search_filter = visibility.filter_for(AGENTS[name])
            fast = set(searcher.docs_for_query(search_filter))
            tree = set(searcher.docs_for_query(search_filter.child))

            assert fast == tree, name
            assert set(searcher.docs_for_query(search_filter)) == fast, name
    finally:
        index.close()


def test_expired_agents_swept_from_cache(monkeypatch):
    import knowledge.visibility as visibility_module

    monkeypatch.setattr(visibility_module, "MAX_CACHED_AGENTS", 2)
    settings = settings_for_tests(knowledge={"visibility_cache_ttl": 60})
    clock = FakeClock()
    visibility = Visibility(rules_for(Case()), settings, clock=clock)
    visibility.filter_for(AGENTS["alice"])
    visibility.filter_for(AGENTS["bob"])

    clock.now += 61
    visibility.filter_for(AGENTS["dave"])

    assert len(visibility._cache) == 1
    assert set(visibility._filters) == set(visibility._cache)
