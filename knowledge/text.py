"""Turn article HTML into plain text and into the passages the assistant cites.

The HTML comes from ``kb_knowledge.text`` and is parsed with the standard
library's ``html.parser``, which tolerates the unclosed tags that rich-text
editors produce. Scripts, styles and comments are dropped and entities are
decoded. Headings, paragraphs, list items and table rows become separate
blocks, and the cells of a table row are joined with `` | ``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser

logger = logging.getLogger(__name__)

# Passage sizes in words: small paragraphs are merged up to the minimum and
# long ones are split on sentence boundaries below the maximum.
PASSAGE_MIN_WORDS = 40
PASSAGE_MAX_WORDS = 200

CELL_SEPARATOR = " | "

SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "iframe", "object"})
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCK_TAGS = frozenset({
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
    "ul", "ol", "dl", "dt", "dd", "li", "blockquote", "pre", "table", "thead",
    "tbody", "tfoot", "caption", "figure", "figcaption", "form", "fieldset", "address",
    "details", "summary", "hr", "br",
})
CELL_TAGS = frozenset({"td", "th"})
VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"})

_WHITESPACE = re.compile(r"\s+")
# A sentence ends with . ! or ? followed by whitespace and an upper-case
# letter, digit or opening quote; this keeps "e.g. the" and "v2.1" together.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True)
class Block:
    """One line of article text: a heading, a paragraph, a list item or a table row."""

    kind: str  # "heading", "item", "row" or "paragraph"
    text: str


@dataclass(frozen=True)
class Passage:
    """A piece of an article of roughly 40 to 200 words, with the heading it sits under."""

    heading: str
    text: str
    position: int

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, object]:
        """Return the passage as plain data for storage."""
        return {"heading": self.heading, "text": self.text, "position": self.position}


class _BlockParser(HTMLParser):
    """Collect text blocks from HTML, skipping scripts, styles and comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._parts: list[str] = []
        self._kind = "paragraph"
        self._skip_depth = 0
        self._cells: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_TAGS:
            if tag not in VOID_TAGS:
                self._skip_depth += 1
            return
        if tag in HEADING_TAGS:
            self._flush()
            self._kind = "heading"
        elif tag == "li":
            self._flush()
            self._kind = "item"
        elif tag == "tr":
            self._flush()
            self._cells = []
        elif tag in CELL_TAGS:
            self._end_cell()
        elif tag in BLOCK_TAGS:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in CELL_TAGS:
            self._end_cell()
        elif tag == "tr" or (tag in ("table", "thead", "tbody", "tfoot") and self._cells is not None):
            self._end_row()
        elif tag in HEADING_TAGS or tag in BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip_depth == 0:
            self._parts.append(data)

    def close(self) -> None:
        super().close()
        self._end_row()
        self._flush()

    def _flush(self) -> None:
        """End the current block, unless inside a table row whose cells are still open."""
        if self._cells is not None:
            self._end_cell()
            return
        text = _WHITESPACE.sub(" ", "".join(self._parts)).strip()
        self._parts = []
        if text:
            self.blocks.append(Block(self._kind, text))
        self._kind = "paragraph"

    def _end_cell(self) -> None:
        if self._cells is None:
            # A cell outside any <tr>: treat the table as having one implicit row.
            self._flush_outside_row()
            self._cells = []
            return
        text = _WHITESPACE.sub(" ", "".join(self._parts)).strip()
        self._parts = []
        if text:
            self._cells.append(text)

    def _end_row(self) -> None:
        if self._cells is None:
            return
        self._end_cell()
        cells, self._cells = self._cells, None
        if cells:
            self.blocks.append(Block("row", CELL_SEPARATOR.join(cells)))
        self._kind = "paragraph"

    def _flush_outside_row(self) -> None:
        text = _WHITESPACE.sub(" ", "".join(self._parts)).strip()
        self._parts = []
        if text:
            self.blocks.append(Block(self._kind, text))


def html_blocks(html: str | None) -> list[Block]:
    """Parse article HTML into text blocks in document order."""
    if not html:
        return []
    parser = _BlockParser()
    parser.feed(html)
    parser.close()
    return parser.blocks


def html_to_text(html: str | None) -> str:
    """Convert article HTML to plain text with one heading, paragraph, item or row per line."""
    return "\n".join(block.text for block in html_blocks(html))


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at . ! or ? followed by a capital, digit or quote."""
    return [sentence for sentence in _SENTENCE_END.split(text) if sentence.strip()]


def split_passages(title: str, html: str | None) -> list[Passage]:
    """Split an article into passages of about 40 to 200 words, each under its heading.

    Text before the first heading sits under the article title. A section's
    small paragraphs are merged, and a paragraph longer than the maximum is
    split on sentence boundaries. A section shorter than the minimum stays
    one short passage rather than borrowing text from another heading.
    """
    return passages_from_blocks(title, html_blocks(html))


def passages_from_blocks(title: str, blocks: list[Block]) -> list[Passage]:
    """Split already parsed blocks into passages; see ``split_passages``."""
    passages: list[Passage] = []
    for heading, paragraphs in _sections(title, blocks):
        for text in _pack(paragraphs):
            passages.append(Passage(heading=heading, text=text, position=len(passages)))
    return passages


def _sections(title: str, blocks: list[Block]) -> list[tuple[str, list[str]]]:
    """Group blocks under the heading that precedes them."""
    sections: list[tuple[str, list[str]]] = [(title, [])]
    for block in blocks:
        if block.kind == "heading":
            sections.append((block.text, []))
        else:
            sections[-1][1].append(block.text)
    return [(heading, paragraphs) for heading, paragraphs in sections if paragraphs]


def _pack(paragraphs: list[str]) -> list[str]:
    """Merge small paragraphs and split long ones into chunks within the passage sizes."""
    pieces: list[str] = []
    for paragraph in paragraphs:
        if _words(paragraph) > PASSAGE_MAX_WORDS:
            pieces.extend(_split_long(paragraph))
        else:
            pieces.append(paragraph)
    chunks: list[str] = []
    current: list[str] = []
    for piece in pieces:
        size = sum(_words(part) for part in current)
        if current and (size >= PASSAGE_MIN_WORDS or size + _words(piece) > PASSAGE_MAX_WORDS):
            chunks.append("\n".join(current))
            current = []
        current.append(piece)
    if current:
        tail = "\n".join(current)
        # A short remainder joins the previous chunk when both fit in one passage.
        if chunks and _words(tail) < PASSAGE_MIN_WORDS and _words(chunks[-1]) + _words(tail) <= PASSAGE_MAX_WORDS:
            chunks[-1] = chunks[-1] + "\n" + tail
        else:
            chunks.append(tail)
    return chunks


def _split_long(paragraph: str) -> list[str]:
    """Split one long paragraph into sentence groups of at most the maximum size."""
    groups: list[str] = []
    current: list[str] = []
    for sentence in split_sentences(paragraph):
        for piece in _split_words(sentence):
            if current and _words(" ".join(current)) + _words(piece) > PASSAGE_MAX_WORDS:
                groups.append(" ".join(current))
                current = []
            current.append(piece)
    if current:
        groups.append(" ".join(current))
    return groups


def _split_words(sentence: str) -> list[str]:
    """Cut a single sentence longer than the maximum into word windows."""
    words = sentence.split()
    if len(words) <= PASSAGE_MAX_WORDS:
        return [sentence]
    return [" ".join(words[i:i + PASSAGE_MAX_WORDS]) for i in range(0, len(words), PASSAGE_MAX_WORDS)]


def _words(text: str) -> int:
    return len(text.split())


# A common English stop list (articles, pronouns, auxiliaries, prepositions)
# plus the fragments that contractions leave behind ("what's" -> "what", "s").
ENGLISH_STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his i if in into is it its itself
just me more most my myself no nor not of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves s t d ll m re ve
""".split())

# Words (and runs of digits with dots, like 10.2.1) as the tokenizer sees them.
TOKEN_PATTERN = r"\w+(?:\.?\w+)*"


def build_analyzer(name: str = "stemming"):
    """Return the Whoosh analyzer named by ``index.analyzer``: "stemming" or "standard".

    Both lower-case, drop English stop words and keep one-letter tokens,
    because names like "Department X" or "Room B" depend on them.
    """
    from whoosh.analysis import LowercaseFilter, RegexTokenizer, StemFilter, StopFilter

    chain = RegexTokenizer(TOKEN_PATTERN) | LowercaseFilter() | StopFilter(ENGLISH_STOP_WORDS, minsize=1)
    if name == "stemming":
        # Snowball English (Porter2): Whoosh's default Porter stemmer leaves "resetting" as "resett".
        chain = chain | StemFilter(lang="en", cachesize=50000)
    return chain
