"""Tests for HTML to text and passage splitting."""

from __future__ import annotations

import pytest

from knowledge.text import (
    PASSAGE_MAX_WORDS,
    PASSAGE_MIN_WORDS,
    build_analyzer,
    html_blocks,
    html_to_text,
    split_passages,
    split_sentences,
)


def words(count: int, word: str = "word") -> str:
    return " ".join(f"{word}{i}" for i in range(count))


def test_html_to_text_drops_scripts_styles_comments():
    html = (
        "<p>Before</p><script>var secret = 1;</script><style>p { color: red }</style>"
        "<!-- hidden comment --><p>After</p>"
    )
    text = html_to_text(html)
    assert text == "Before\nAfter"


def test_html_to_text_decodes_entities():
    assert html_to_text("<p>Fish &amp; chips &lt;b&gt; &eacute;t&#233; &nbsp;x</p>") == "Fish & chips <b> été x"


def test_html_to_text_headings_and_items():
    html = "<h2>Steps</h2><ul><li>Open the portal</li><li>Click <b>Reset</b></li></ul><p>Done.</p>"
    assert html_to_text(html).splitlines() == ["Steps", "Open the portal", "Click Reset", "Done."]


def test_html_to_text_table_row_cells():
    html = (
        "<table><tr><th>Room</th><th>Seats</th></tr>"
        "<tr><td>B-762</td><td>40</td></tr></table><p>Below</p>"
    )
    assert html_to_text(html).splitlines() == ["Room | Seats", "B-762 | 40", "Below"]


def test_html_to_text_handles_unclosed_tags_and_breaks():
    html = "<p>First line<br>second line<p>Third <i>para"
    assert html_to_text(html).splitlines() == ["First line", "second line", "Third para"]


def test_html_to_text_empty_input():
    assert html_to_text("") == ""
    assert html_to_text(None) == ""


def test_html_blocks_mark_headings():
    kinds = [block.kind for block in html_blocks("<h1>T</h1><p>p</p><li>i</li>")]
    assert kinds == ["heading", "paragraph", "item"]


def test_split_sentences_keeps_abbreviations_together():
    text = "Use version 2.1 of the client. Then restart it! Is it up? yes e.g. now."
    assert split_sentences(text) == ["Use version 2.1 of the client.", "Then restart it!", "Is it up? yes e.g. now."]


def test_passages_merge_small_paragraphs_under_heading():
    html = "<h2>Setup</h2>" + "".join(f"<p>{words(15, f'p{n}w')}</p>" for n in range(6))
    passages = split_passages("Title", html)
    assert [passage.heading for passage in passages] == ["Setup", "Setup"]
    sizes = [len(passage.text.split()) for passage in passages]
    assert sizes == [45, 45]


def test_passages_split_long_paragraph_on_sentences():
    sentence = words(29) + "."
    paragraph = " ".join(sentence.replace("word0", f"Start{n}") for n in range(20))  # 600 words
    passages = split_passages("Title", f"<h3>Long</h3><p>{paragraph}</p>")
    assert len(passages) == 4
    for passage in passages:
        assert PASSAGE_MIN_WORDS <= len(passage.text.split()) <= PASSAGE_MAX_WORDS
        assert passage.text.endswith(".")
        assert passage.heading == "Long"


def test_passages_split_one_endless_sentence_by_words():
    passages = split_passages("Title", f"<p>{words(450)}</p>")
    assert [len(passage.text.split()) for passage in passages] == [200, 200, 50]


def test_passages_text_before_first_heading_uses_title():
    html = "<p>Intro text.</p><h2>Details</h2><p>Detail text.</p>"
    passages = split_passages("How to reset", html)
    assert [(p.heading, p.text, p.position) for p in passages] == [
        ("How to reset", "Intro text.", 0),
        ("Details", "Detail text.", 1),
    ]


def test_passages_short_tail_joins_previous_chunk():
    html = "<h2>S</h2>" + f"<p>{words(150, 'a')}</p><p>{words(10, 'b')}</p>"
    passages = split_passages("T", html)
    assert len(passages) == 1
    assert len(passages[0].text.split()) == 160


@pytest.mark.parametrize(
    ("analyzer_name", "text", "expected"),
    [
        ("stemming", "Resetting the Passwords for Department X", ["reset", "password", "depart", "x"]),
        ("standard", "Resetting the Passwords for Department X", ["resetting", "passwords", "department", "x"]),
        ("standard", "What's version 10.2.1?", ["version", "10.2.1"]),
    ],
)
def test_build_analyzer_tokens(analyzer_name, text, expected):
    analyzer = build_analyzer(analyzer_name)
    assert [token.text for token in analyzer(text)] == expected
