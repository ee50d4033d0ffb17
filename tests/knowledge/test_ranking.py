"""Tests for ranking: query terms, case weighting, bounded priors and explain output."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from config import ConfigError, settings_for_tests
from knowledge.case_query import build_case_query
from knowledge.documents import ArticleDoc
from knowledge.index import KnowledgeIndex
from knowledge.ranking import (
    WeightedTerm,
    build_proximity_query,
    combined_prior,
    plan_query,
    prior_factors,
    query_terms,
    select_scored_terms,
    split_answer_instructions,
)
from knowledge.text import build_analyzer
from tests.knowledge.test_case_query import FakeCase

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def article(sys_id: str, title: str, html: str, **values) -> ArticleDoc:
    return ArticleDoc.from_html(sys_id=sys_id, title=title, html=html, **values)


@pytest.fixture
def index(tmp_path):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings_for_tests())
    yield knowledge_index
    knowledge_index.close()


def test_split_answer_instructions():
    question, instructions = split_answer_instructions(
        "Who manages the cafeteria? Answer with the full name of the manager. It is urgent."
    )
    assert question == "Who manages the cafeteria? It is urgent."
    assert instructions == "Answer with the full name of the manager."


def test_query_terms_drop_question_and_format_words():
    analyzer = build_analyzer("standard")
    terms = query_terms("What's the Wi-Fi password? Respond with the password only.", analyzer,
                        instruction_weight=0.5)
    assert [(term.text, term.weight) for term in terms] == [("wi", 1.0), ("fi", 1.0), ("password", 1.0)]


def test_query_terms_instruction_words_get_instruction_weight():
    analyzer = build_analyzer("standard")
    terms = query_terms("Who runs the cafeteria? Answer with the manager's full name.", analyzer,
                        instruction_weight=0.5)
    assert [(term.text, term.weight) for term in terms] == [
        ("runs", 1.0), ("cafeteria", 1.0), ("manager", 0.5), ("name", 0.5)
    ]


def test_query_terms_boosts_add_and_raise_weights():
    analyzer = build_analyzer("stemming")
    terms = query_terms("printer jam", analyzer, {"Printers": 0.2, "network": 0.3})
    assert [(term.text, term.weight) for term in terms] == [("printer", 1.0), ("jam", 1.0), ("network", 0.3)]


def test_short_description_beats_description(index):
    index.upsert([
        article("vpn", "VPN connection drops", "<p>When the VPN connection drops, reinstall the client.</p>"),
        article("toner", "Printer toner empty", "<p>Replace the printer toner cartridge.</p>"),
    ])
    case = FakeCase(short_description="VPN connection drops",
                    description="Unrelated: the printer toner is empty too.")
    hits = index.search(**build_case_query(case, index.settings.ranking).search_kwargs())
    assert [hit.sys_id for hit in hits] == ["vpn", "toner"]


def test_description_words_still_find_article(index):
    index.upsert([article("toner", "Printer toner empty", "<p>Replace the printer toner cartridge.</p>")])
    case = FakeCase(short_description="Cannot work", description="The printer toner seems empty.")
    hits = index.search(**build_case_query(case, index.settings.ranking).search_kwargs())
    assert [hit.sys_id for hit in hits] == ["toner"]


def test_prior_factors_bounded_by_weights():
    ranking = settings_for_tests().ranking
    stored = {"helpful_ratio": 1.0, "attach_count": 10**6, "updated_on": NOW}
    factors = prior_factors(stored, ranking, NOW)
    assert factors["helpful"] == pytest.approx(1 + ranking.helpful_weight)
    assert factors["attach"] <= 1 + ranking.attach_weight
    assert factors["recency"] == pytest.approx(1 + ranking.recency_weight)
    assert combined_prior(factors, ranking) <= ranking.prior_cap


def test_prior_factors_neutral_without_evidence():
    ranking = settings_for_tests().ranking
    factors = prior_factors({"helpful_ratio": None, "attach_count": 0}, ranking, NOW)
    assert factors == {"helpful": 1.0, "attach": 1.0, "recency": 1.0}


def test_recency_halves_per_half_life():
    ranking = settings_for_tests(ranking={"recency_weight": 1.0, "recency_half_life_days": 10.0}).ranking
    factors = prior_factors({"updated_on": NOW - timedelta(days=10)}, ranking, NOW)
    assert factors["recency"] == pytest.approx(1.5)


def test_high_prior_article_does_not_outrank_relevant(index):
    fresh = datetime.now(timezone.utc)
    index.upsert([
        article("relevant", "Reset a forgotten VPN password",
                "<p>To reset a forgotten VPN password, open the self-service portal.</p>",
                updated_on=fresh - timedelta(days=2000)),
        article("popular", "Office parking rules",
                "<p>Parking passes are renewed yearly. Your portal shows the pass.</p>",
                helpful_ratio=1.0, attach_count=5000, updated_on=fresh),
    ])
    hits = index.search("forgotten VPN password reset portal", explain=True)
    assert [hit.sys_id for hit in hits] == ["relevant", "popular"]
    assert hits[1].explain["prior_factor"] == pytest.approx(index.settings.ranking.prior_cap)
    assert hits[1].score <= hits[1].explain["text_score"] * index.settings.ranking.prior_cap + 1e-9


def test_priors_reorder_close_results(index):
    index.upsert([
        article("plain", "Reset VPN password", "<p>Reset the VPN password in the portal.</p>"),
        article("liked", "Reset VPN password", "<p>Reset the VPN password in the portal.</p>",
                helpful_ratio=1.0, attach_count=20),
    ])
    assert [hit.sys_id for hit in index.search("reset vpn password")] == ["liked", "plain"]


def test_explain_lists_components(index):
    index.upsert([article("vpn", "VPN password reset", "<h2>Reset</h2><p>Reset the VPN password.</p>",
                          meta="vpn, password", helpful_ratio=0.5)])
    explain = index.search("reset VPN password", explain=True)[0].explain
    assert set(explain) == {"matched_terms", "bm25", "proximity", "text_score", "priors", "prior_factor", "score"}
    assert set(explain["bm25"]) == {"title", "meta", "headings", "body"}
    assert all(value > 0 for value in explain["bm25"].values())
    assert explain["proximity"] > 0
    assert set(explain["priors"]) == {"helpful", "attach", "recency"}
    assert "body:vpn" in explain["matched_terms"]
    assert explain["text_score"] == pytest.approx(sum(explain["bm25"].values()) + explain["proximity"])
    assert explain["score"] == pytest.approx(explain["text_score"] * explain["prior_factor"])


def test_explain_off_by_default(index):
    index.upsert([article("vpn", "VPN", "<p>vpn</p>")])
    assert index.search("vpn")[0].explain is None


def test_field_weight_zero_ignores_field(tmp_path):
    settings = settings_for_tests(ranking={"title_weight": 0.0})
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    knowledge_index.upsert([article("t", "Zebra crossing", "<p>Nothing else here.</p>")])
    assert knowledge_index.search("zebra") == []
    knowledge_index.close()


def test_long_description_does_not_outvote_short_description(index):
    index.upsert([
        article("wifi", "Lobby Wi-Fi", "<p>Connect to the lobby Wi-Fi network with the guest code.</p>"),
        article("toner", "Printer toner", "<p>Replace the printer toner cartridge when the tray light is on, "
                "then print a test page, check the paper tray and reset the printer counter.</p>"),
    ])
    case = FakeCase(short_description="Lobby Wi-Fi not working",
                    description="Printer toner cartridge, tray light on, test page, paper tray, printer counter.")
    hits = index.search(**build_case_query(case, index.settings.ranking).search_kwargs())
    assert hits[0].sys_id == "wifi"


def test_boost_terms_get_no_proximity_pairs():
    analyzer = build_analyzer("standard")
    terms = query_terms("printer jam", analyzer, {"paper tray": 0.5})
    assert [(term.text, term.in_text) for term in terms] == [
        ("printer", True), ("jam", True), ("paper", False), ("tray", False)
    ]


def test_prior_cap_bounds_large_weights(tmp_path):
    settings = settings_for_tests(ranking={"helpful_weight": 10.0, "attach_weight": 10.0, "prior_cap": 1.2})
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    knowledge_index.upsert([
        article("relevant", "Reset a forgotten VPN password", "<p>Reset a forgotten VPN password in the portal.</p>"),
        article("popular", "Office parking rules", "<p>Your portal shows the parking pass.</p>",
                helpful_ratio=1.0, attach_count=5000),
    ])
    hits = knowledge_index.search("forgotten VPN password reset portal", explain=True)
    assert [hit.sys_id for hit in hits] == ["relevant", "popular"]
    assert hits[1].explain["priors"]["helpful"] == pytest.approx(11.0)
    assert hits[1].explain["prior_factor"] == pytest.approx(1.2)
    knowledge_index.close()


def weighted(*texts: str) -> list[WeightedTerm]:
    return [WeightedTerm(text) for text in texts]


def test_proximity_pairs_capped_by_idf():
    ranking = settings_for_tests(ranking={"proximity_max_pairs": 2, "proximity_fields": ["body"]}).ranking
    terms = weighted("reset", "vpn", "password", "portal", "today")
    idf = {"reset": 1.0, "vpn": 5.0, "password": 4.0, "portal": 3.0, "today": 0.5}
    proximity = build_proximity_query(terms, ranking, idf=idf)
    assert [tuple(clause.words) for clause in proximity.subqueries] == [("vpn", "password"), ("password", "portal")]


def test_proximity_pairs_uncapped_at_zero():
    ranking = settings_for_tests(ranking={"proximity_max_pairs": 0, "proximity_fields": ["body"]}).ranking
    proximity = build_proximity_query(weighted("a1", "b2", "c3", "d4"), ranking)
    assert len(proximity.subqueries) == 3


def test_proximity_one_clause_per_field():
    ranking = settings_for_tests(ranking={"proximity_max_pairs": 0, "proximity_fields": ["title", "body"]}).ranking
    proximity = build_proximity_query(weighted("vpn", "password"), ranking)
    assert [clause.fieldname for clause in proximity.subqueries] == ["title", "body"]


def test_proximity_fields_empty_turns_bonus_off():
    ranking = settings_for_tests(ranking={"proximity_fields": []}).ranking
    assert build_proximity_query(weighted("vpn", "password"), ranking) is None


def test_proximity_fields_reject_unknown_field():
    with pytest.raises(ConfigError):
        settings_for_tests(ranking={"proximity_fields": ["summary"]})


def test_max_query_terms_keep_heaviest():
    ranking = settings_for_tests(ranking={"max_query_terms": 2}).ranking
    terms = [WeightedTerm("printer", 1.0), WeightedTerm("jam", 1.0), WeightedTerm("tray", 0.3)]
    idf = {"printer": 2.0, "jam": 1.5, "tray": 6.0}
    kept = select_scored_terms(terms, ranking, idf)
    assert [term.text for term in kept] == ["printer", "tray"]


def test_max_query_terms_zero_keeps_all():
    ranking = settings_for_tests(ranking={"max_query_terms": 0}).ranking
    terms = weighted("a1", "b2", "c3")
    assert select_scored_terms(terms, ranking, {}) == terms


def test_plan_scores_capped_terms_only():
    ranking = settings_for_tests(ranking={"max_query_terms": 2, "proximity_max_pairs": 0}).ranking
    terms = weighted("reset", "vpn", "password")
    idf = {"reset": 1.0, "vpn": 5.0, "password": 4.0}
    plan = plan_query(terms, ranking, idf=idf)
    assert [term.text for term in plan.terms] == ["vpn", "password"]
    assert [clause.text for clause in plan.fields["body"].subqueries] == ["vpn", "password"]
    # Pairs come from the full query, so "reset vpn" still gets a proximity clause.
    assert [tuple(clause.words) for clause in plan.proximity.subqueries] == [("reset", "vpn"), ("vpn", "password")]
