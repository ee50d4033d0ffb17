"""Tests for building a search query from a case."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from config import settings_for_tests
from knowledge.case_query import build_case_query, content_words, strip_boilerplate


@dataclass
class FakeCase:
    short_description: str = ""
    description: str = ""
    latest_comment: str = ""
    category: str = ""
    subcategory: str = ""
    product: str = ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi team,\nMy VPN drops every hour.", "My VPN drops every hour."),
        ("VPN drops.\nThanks,\nMaria Lopez\nACME Corp", "VPN drops."),
        ("VPN drops.\n-- \nMaria | +1 555 0100", "VPN drops."),
        ("VPN drops.\nOn Mon, 3 Mar 2026 at 10:00, Support <s@example.com> wrote:\n> old text", "VPN drops."),
        ("VPN drops.\n-----Original Message-----\nFrom: a@b.c", "VPN drops."),
        ("> quoted line\nVPN drops.", "VPN drops."),
        ("RE: [External] VPN drops, see INC0012345 and https://x.example/a", "VPN drops, see and"),
        ("VPN drops. Thanks in advance! Please help ASAP.", "VPN drops."),
        ("VPN drops.\nSent from my iPhone", "VPN drops."),
        ("Contact me at maria@example.com about case #42.", "Contact me at about ."),
    ],
)
def test_strip_boilerplate(text, expected):
    assert strip_boilerplate(text) == expected


def test_content_words_drop_stop_words_and_repeats():
    assert content_words("The printer is not printing; the printer jams") == ["printer", "printing", "jams"]


def test_case_query_weights_short_description_above_description():
    ranking = settings_for_tests().ranking
    case = FakeCase(
        short_description="VPN disconnects",
        description="Hello,\nAlso the printer toner is low.\nRegards,\nBob",
        latest_comment="Still broken after reboot. Thanks!",
    )
    query = build_case_query(case, ranking)
    assert query.text == "VPN disconnects"
    # Two short-description words against three description words ("printer
    # toner low"; "also" is filler) and two comment words ("broken reboot").
    assert query.boosts["printer"] == pytest.approx(ranking.description_weight * 2 / 3)
    assert query.boosts["reboot"] == pytest.approx(ranking.comment_weight)
    assert "vpn" not in query.boosts
    assert "bob" not in query.boosts
    assert "hello" not in query.boosts
    assert "thanks" not in query.boosts


def test_case_query_category_and_product_boosts():
    ranking = settings_for_tests().ranking
    case = FakeCase(short_description="Cannot log in", category="network", subcategory="vpn_client",
                    product="0123456789abcdef0123456789abcdef")
    query = build_case_query(case, ranking)
    assert query.boosts == {"network": ranking.category_weight, "vpn": ranking.category_weight,
                            "client": ranking.category_weight}


def test_case_query_product_name_boosted():
    ranking = settings_for_tests().ranking
    query = build_case_query(FakeCase(short_description="Battery drains", product="Aurora Phone"), ranking)
    assert query.boosts == {"aurora": ranking.product_weight, "phone": ranking.product_weight}


def test_case_query_empty_case():
    assert build_case_query(FakeCase()).is_empty()


def test_case_query_search_kwargs():
    query = build_case_query(FakeCase(short_description="Printer jam", description="tray two"))
    kwargs = query.search_kwargs()
    assert kwargs["query_text"] == "Printer jam"
    assert set(kwargs["boosts"]) == {"tray", "two"}


def test_case_query_long_description_bounded():
    ranking = settings_for_tests().ranking
    description = " ".join(f"word{number}" for number in range(100))
    query = build_case_query(FakeCase(short_description="Printer jam", description=description), ranking)
    assert len(query.boosts) == 20
    assert sum(query.boosts.values()) == pytest.approx(ranking.description_weight * 2)


def test_case_query_drops_filler_from_description():
    ranking = settings_for_tests().ranking
    case = FakeCase(short_description="Nova 8 battery drains", product="Nova 8",
                    description="It is barely at 20% by noon, even though I also charge it overnight.",
                    latest_comment="Still drains, anything else?")
    query = build_case_query(case, ranking)

    assert "8" in query.text
    for filler in ("barely", "20", "even", "though", "also", "still", "anything"):
        assert filler not in query.boosts
    assert "noon" in query.boosts
    assert "overnight" in query.boosts
