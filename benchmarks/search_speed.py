"""Measure search latency, sync time and memory of the knowledge index.

Run from the project root::

    .venv/bin/python benchmarks/search_speed.py                 # 1k, 10k, 50k articles
    .venv/bin/python benchmarks/search_speed.py --sizes 1000    # a quick run

What it measures, each printed as a Markdown table with the machine:

1. Suggestion latency (p50, p95) of ``KnowledgeIndex.search`` with an
   agent's visibility filter, warm index and searcher, at each size; beside
   it ``bm25s`` on the same title and body text, and the p95 ratio.
2. Full sync time of ``--sync-size`` articles from the embedded instance
   (seeded in bulk through ``.store.insert``), and the incremental sync of
   ``--changed`` updated articles.
3. Resident memory (RSS) of a separate process that opens the largest index
   and runs the queries, as the sidecar does.

Articles are synthetic: each body is a seeded random draw of sentences from
real texts (the shared data sets under ../shared/data when present, and the
demo knowledge), under a title built from words of those texts. When no
text source is found, a seeded vocabulary is used instead; the output says
which.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    PROJECT_ROOT,
    SHARED_DATA,
    format_table,
    machine_table,
    percentile,
    quiet_bm25s,
)

logger = logging.getLogger(__name__)

DEFAULT_SIZES = (1000, 10000, 50000)
# Goals on the 2-core reference machine; reported beside each figure.
GOALS = {
    "p95_ms": {10000: 50.0, 50000: 150.0},
    "full_sync_s": 90.0,
    "incremental_s": 3.0,
    "rss_mb": 300.0,
}
# The full sync and memory goals are set for these sizes only.
GOAL_SYNC_SIZE = 10000
GOAL_RSS_SIZE = 50000
KB_COUNT = 6
SENTENCE_PATTERN = re.compile(r"(?<=[.!?])\s+")
TAG_PATTERN = re.compile(r"<[^>]+>")


# -- corpus -----------------------------------------------------------------------


@dataclass
class TextSource:
    """Sentences and words to build articles from, queries to search with, and their origin."""

    sentences: list[str]
    title_words: list[str]
    queries: list[str]
    description: str


def load_text_source(seed: int) -> TextSource:
    """Collect sentences and queries from the shared data sets and the demo data."""
    sentences: list[str] = []
    queries: list[str] = []
    used = []
    for name, loader in (("workarena_kb", _read_workarena), ("mtrag_ibmcloud", _read_mtrag),
                         ("servicenow_oob_itsm_records", _read_itsm_records),
                         ("demo knowledge", _read_demo_knowledge)):
        found_sentences, found_queries = loader()
        if found_sentences or found_queries:
            used.append(f"{name} ({len(found_sentences)} sentences, {len(found_queries)} queries)")
        sentences += found_sentences
        queries += found_queries
    if len(sentences) < 200 or len(queries) < 50:
        return _seeded_vocabulary(seed)
    words = sorted({word for sentence in sentences for word in re.findall(r"[A-Za-z]{4,}", sentence)})
    return TextSource(sentences, words, queries, "sentences drawn from " + "; ".join(used))


def _split_sentences(text: str) -> list[str]:
    plain = html.unescape(TAG_PATTERN.sub(" ", text))
    plain = re.sub(r"\s+", " ", plain).strip()
    return [sentence for sentence in SENTENCE_PATTERN.split(plain) if 30 <= len(sentence) <= 400]


def _read_jsonl(path: Path) -> Iterator[dict]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _read_workarena() -> tuple[list[str], list[str]]:
    folder = SHARED_DATA / "workarena_kb"
    sentences = [s for row in _read_jsonl(folder / "articles.jsonl") for s in _split_sentences(row["text_html"])]
    queries = [row["query"] for row in _read_jsonl(folder / "pairs.jsonl")]
    return sentences, queries


def _read_mtrag() -> tuple[list[str], list[str]]:
    folder = SHARED_DATA / "mtrag_ibmcloud" / "mtragun_human"
    sentences = [s for row in _read_jsonl(folder / "passages_ibmcloud.jsonl")
                 for s in _split_sentences(str(row.get("text", "")))]
    return sentences, []


def _read_itsm_records() -> tuple[list[str], list[str]]:
    folder = SHARED_DATA / "servicenow_oob_itsm_records"
    sentences, queries = [], []
    for table in ("incident", "problem", "change_request"):
        path = folder / f"{table}.json"
        if not path.exists():
            continue
        for row in json.loads(path.read_text(encoding="utf-8")).get("result", []):
            title = _display(row.get("short_description"))
            description = _display(row.get("description"))
            sentences += _split_sentences(description)
            if table == "incident" and title:
                # A case as the suggestion widget queries it: title plus description.
                queries.append(f"{title} {description[:300]}".strip())
    return sentences, queries


def _read_demo_knowledge() -> tuple[list[str], list[str]]:
    import yaml

    sentences = []
    for path in sorted((PROJECT_ROOT / "inward" / "demo" / "data").glob("**/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        sentences += [s for text in _strings(data) for s in _split_sentences(text)]
    return sentences, []


def _strings(data: object) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def _display(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("display_value") or value.get("value") or ""
    return str(value or "")


def _seeded_vocabulary(seed: int) -> TextSource:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "zo", "pa", "qu", "ex", "or", "in"]
    words = sorted({"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(8000)})
    sentences = [" ".join(rng.choices(words, k=rng.randint(8, 20))).capitalize() + "." for _ in range(5000)]
    queries = [" ".join(rng.choices(words, k=rng.randint(3, 8))) for _ in range(500)]
    return TextSource(sentences, words, queries, "seeded random vocabulary (no text source found)")


@dataclass
class SyntheticArticle:
    """One generated article: the fields the platform and the index need."""

    sys_id: str
    number: str
    title: str
    html: str
    kb_index: int
    restricted: bool


def generate_articles(count: int, source: TextSource, seed: int) -> list[SyntheticArticle]:
    """Generate ``count`` varied articles from ``source``, the same for the same seed."""
    rng = random.Random(seed)
    articles = []
    for number in range(count):
        title = " ".join(rng.choices(source.title_words, k=rng.randint(4, 9))).capitalize()
        paragraphs = []
        for _ in range(rng.randint(2, 6)):
            paragraphs.append("<p>" + html.escape(" ".join(rng.choices(source.sentences, k=rng.randint(2, 5)))) + "</p>")
        articles.append(SyntheticArticle(
            sys_id=f"{rng.getrandbits(128):032x}",
            number=f"KB{number + 1:07d}",
            title=title,
            html=f"<h2>{html.escape(title)}</h2>" + "".join(paragraphs),
            kb_index=number % KB_COUNT,
            # One article in ten has its own can-read criteria.
            restricted=number % 10 == 0,
        ))
    return articles


# -- visibility set-up shared by the index and the sync benchmarks ----------------


def kb_sys_id(kb_index: int) -> str:
    return f"{kb_index + 1:032x}"


CRITERIA_ID = "c" * 32


def bench_agent():
    """Return an agent who may read five of six knowledge bases and the restricted articles."""
    from integration.schemas import Agent

    return Agent(sys_id="a" * 32, user_name="bench.agent", name="Bench Agent", email="", active=True,
                 roles=frozenset({"itil"}), groups=frozenset({"b" * 32}), group_names=frozenset({"Service Desk"}))


def bench_visibility(settings, index):
    """Build visibility rules: one knowledge base closed to the agent, one criteria granting the group."""
    from integration.schemas import KnowledgeBase, UserCriteria
    from knowledge.visibility import Visibility, VisibilityRules

    criteria = UserCriteria(sys_id=CRITERIA_ID, name="Service desk", users=frozenset(),
                            groups=frozenset({"b" * 32}), roles=frozenset(), match_all=False,
                            advanced=False, active=True)
    closed = UserCriteria(sys_id="d" * 32, name="HR only", users=frozenset(), groups=frozenset({"e" * 32}),
                          roles=frozenset(), match_all=False, advanced=False, active=True)
    bases = {}
    for kb_index in range(KB_COUNT):
        can_read = [closed.sys_id] if kb_index == KB_COUNT - 1 else []
        bases[kb_sys_id(kb_index)] = KnowledgeBase(
            sys_id=kb_sys_id(kb_index), title=f"Knowledge base {kb_index + 1}", description="",
            owner="", kb_managers=[], active=True, can_read_user_criteria=can_read)
    rules = VisibilityRules(knowledge_bases=bases, criteria={CRITERIA_ID: criteria, closed.sys_id: closed})
    return Visibility(rules, settings, index=index)


# -- latency ----------------------------------------------------------------------


def to_doc(article: SyntheticArticle, updated_on: datetime):
    from knowledge.documents import ArticleDoc

    return ArticleDoc.from_html(
        sys_id=article.sys_id, title=article.title, html=article.html, number=article.number,
        kb_sys_id=kb_sys_id(article.kb_index), kb_title=f"Knowledge base {article.kb_index + 1}",
        updated_on=updated_on, can_read=[CRITERIA_ID] if article.restricted else [],
    )


def build_index(path: Path, articles: Sequence[SyntheticArticle], settings) -> tuple[object, float]:
    """Build a KnowledgeIndex at ``path`` with ``articles``; return it and the build seconds."""
    from knowledge.index import KnowledgeIndex

    index = KnowledgeIndex(path, settings=settings)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    started = time.perf_counter()
    # The build time includes the candidate snapshot, which rebuild() makes before returning.
    index.rebuild(to_doc(article, base + timedelta(minutes=n)) for n, article in enumerate(articles))
    return index, time.perf_counter() - started


def time_calls(call: Callable[[str], object], queries: Sequence[str], warmup: int) -> list[float]:
    """Run ``call`` on each query after ``warmup`` untimed calls; return milliseconds per call."""
    for query in queries[:warmup]:
        call(query)
    timings = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def bm25s_timings(articles: Sequence[SyntheticArticle], queries: Sequence[str], limit: int,
                  warmup: int) -> list[float]:
    """Index title and body text with bm25s and time retrieval of the top ``limit``."""
    import bm25s

    from knowledge.text import html_to_text

    corpus = [f"{article.title} {html_to_text(article.html)}" for article in articles]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

    def search(query: str) -> object:
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return None
        return retriever.retrieve(tokens, k=min(limit, len(corpus)), show_progress=False, n_threads=1)

    return time_calls(search, queries, warmup)


def measure_latency(size: int, articles, queries, settings, workdir: Path, warmup: int) -> dict:
    """Build the index for ``size`` articles and time Inward's search and bm25s on it."""
    index, build_seconds = build_index(workdir / f"index-{size}", articles[:size], settings)
    visibility = bench_visibility(settings, index)
    search_filter = visibility.filter_for(bench_agent())
    limit = settings.knowledge.suggestions_limit
    inward = time_calls(lambda query: index.search(query, filter=search_filter, limit=limit), queries, warmup)
    visible = index.count(filter=search_filter)
    index.close()
    baseline = bm25s_timings(articles[:size], queries, limit, warmup)
    return {
        "size": size,
        "visible": visible,
        "build_s": build_seconds,
        "p50": percentile(inward, 0.5),
        "p95": percentile(inward, 0.95),
        "bm25s_p50": percentile(baseline, 0.5),
        "bm25s_p95": percentile(baseline, 0.95),
    }


# -- memory -----------------------------------------------------------------------


def measure_rss(index_path: Path, queries: Sequence[str], settings_overrides: dict) -> dict[str, float]:
    """Open the index in a fresh process, run the queries and return its memory figures and open time.

    Keys: rss_mb and anon_mb after the queries, peak_mb (the most RSS it
    ever had, start-up included) and open_s (seconds to open the index,
    candidate snapshot included).
    """
    child = [sys.executable, __file__, "--rss-child", str(index_path), "--overrides", json.dumps(settings_overrides)]
    result = subprocess.run(child, input="\n".join(queries), capture_output=True, text=True, timeout=900,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"RSS child process failed: {result.stderr.strip()[-2000:]}")
    lines = result.stdout.strip().splitlines()
    total, anonymous = lines[-1].split()
    open_seconds, peak = lines[-2].split()
    return {"rss_mb": float(total), "anon_mb": float(anonymous), "peak_mb": float(peak),
            "open_s": float(open_seconds)}


def rss_child(index_path: str, overrides: str) -> None:
    """Open the index, run the queries from stdin with a visibility filter and print RSS in MB.

    Prints the seconds to open the index and the peak RSS (VmHWM) on one
    line, then RSS and RssAnon (the process's own heap, without shared
    libraries and mapped files) on the last.
    """
    import psutil

    from config.settings import settings_for_tests
    from knowledge.index import KnowledgeIndex

    settings = settings_for_tests(**json.loads(overrides))
    started = time.perf_counter()
    index = KnowledgeIndex(index_path, settings=settings)
    open_seconds = time.perf_counter() - started
    search_filter = bench_visibility(settings, index).filter_for(bench_agent())
    for query in sys.stdin.read().splitlines():
        index.search(query, filter=search_filter, limit=settings.knowledge.suggestions_limit)
    print(open_seconds, status_kib("VmHWM") / 2**10)
    print(psutil.Process().memory_info().rss / 2**20, status_kib("RssAnon") / 2**10)


def status_kib(name: str) -> float:
    """Return a KiB figure of this process from /proc/self/status (Linux), or NaN where it is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


# -- sync -------------------------------------------------------------------------


def seed_instance(store, articles: Sequence[SyntheticArticle]) -> None:
    """Insert knowledge bases and articles into the embedded instance in one transaction."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.transaction():
        for kb_index in range(KB_COUNT):
            store.insert("kb_knowledge_base", {"sys_id": kb_sys_id(kb_index), "title": f"Knowledge base {kb_index + 1}"})
        for n, article in enumerate(articles):
            store.insert("kb_knowledge", {
                "sys_id": article.sys_id,
                "number": article.number,
                "short_description": article.title,
                "text": article.html,
                "kb_knowledge_base": kb_sys_id(article.kb_index),
                "workflow_state": "published",
                "active": "true",
                "can_read_user_criteria": CRITERIA_ID if article.restricted else "",
                "sys_updated_on": (base + timedelta(seconds=n)).strftime("%Y-%m-%d %H:%M:%S"),
            })


def measure_sync(articles: Sequence[SyntheticArticle], changed: int, workdir: Path, overrides: dict) -> dict:
    """Time a full sync of ``articles`` from the embedded instance, then an incremental one.

    The instance is seeded in this process, then served from a separate
    process, as a real platform would be, so its request handling does not
    compete with the sync for this process's interpreter lock.
    """
    from config.settings import settings_for_tests
    from integration.client import PlatformClient
    from integration.instance.server import start_instance
    from inward.store import Store
    from knowledge.index import KnowledgeIndex
    from knowledge.sync import sync_knowledge

    base = settings_for_tests(**overrides)
    data_dir = workdir / "instance"
    seeding = start_instance(base, data_dir=data_dir, port=0)
    try:
        started = time.perf_counter()
        seed_instance(seeding.store, articles)
        seed_seconds = time.perf_counter() - started
    finally:
        seeding.stop()

    with serve_instance(data_dir) as url:
        settings = base.replace(
            platform=base.platform.replace(url=url, user=base.instance.user, password=base.instance.password),
            index=base.index.replace(path=str(workdir / "sync-index")),
            store=base.store.replace(url=f"sqlite:///{workdir / 'state.db'}"),
        )
        store = Store(settings.store.url)
        store.upgrade()
        index = KnowledgeIndex(settings.index.path, settings=settings)
        with PlatformClient.from_settings(settings) as client:
            parts = (client.records, index, store)
            full = sync_knowledge(parts, settings=settings, full=True)
            revise_articles(client.records, articles[:changed])
            incremental = sync_knowledge(parts, settings=settings)
        index.close()
        store.close()
    return {"seed_s": seed_seconds, "full": full, "incremental": incremental}


def revise_articles(records, articles: Sequence[SyntheticArticle]) -> None:
    """Change the title of each article through the Table API, as an editor would."""
    for article in articles:
        records.patch("kb_knowledge", article.sys_id, {"short_description": article.title + " (revised)"})


@contextmanager
def serve_instance(data_dir: Path) -> Iterator[str]:
    """Serve the instance data in ``data_dir`` from a child process; yield its URL."""
    child = subprocess.Popen([sys.executable, __file__, "--instance-child", str(data_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"The instance process did not start (first line {url!r}).")
        yield url
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def instance_child(data_dir: str) -> None:
    """Serve the instance on a free loopback port, print its URL and stop when stdin closes."""
    from config.settings import settings_for_tests
    from integration.instance.server import start_instance

    running = start_instance(settings_for_tests(), data_dir=data_dir, port=0)
    print(running.url, flush=True)
    sys.stdin.read()
    running.stop()


# -- report -----------------------------------------------------------------------


def goal_text(value: float, goal: float | None, unit: str = "") -> str:
    if goal is None:
        return "-"
    bound = f"{goal:g} {unit}".strip()
    return f"<= {bound} ({'met' if value <= goal else 'MISSED'})"


def print_report(source: TextSource, latency: list[dict], sync: dict | None, rss: dict[str, float] | None,
                 rss_size: int | None, args: argparse.Namespace) -> None:
    print("## Search speed\n")
    print(f"Corpus: synthetic articles, {source.description}; seed {args.seed}.")
    print(f"Queries: {len(args.query_list)} per size (incident titles and descriptions, agent questions), "
          f"after {args.warmup} warm-up queries; limit {args.limit}; an agent visibility filter on every search; "
          f"ranking.candidates {args.candidates_used}.\n")
    rows = []
    for row in latency:
        goal = GOALS["p95_ms"].get(row["size"])
        rows.append([row["size"], row["visible"], f"{row['build_s']:.1f}", f"{row['p50']:.1f}",
                     f"{row['p95']:.1f}", f"{row['bm25s_p50']:.2f}", f"{row['bm25s_p95']:.2f}",
                     f"{row['p95'] / row['bm25s_p95']:.1f}x", goal_text(row["p95"], goal)])
    print(format_table(["articles", "visible to agent", "index build s", "p50 ms", "p95 ms",
                        "bm25s p50 ms", "bm25s p95 ms", "p95 / bm25s", "p95 goal ms"], rows))
    print()
    other = []
    if sync is not None:
        full, incremental = sync["full"], sync["incremental"]
        other.append([f"full sync of {full.read} articles (embedded instance)", f"{full.duration:.1f} s",
                      goal_text(full.duration, GOALS["full_sync_s"] if full.read == GOAL_SYNC_SIZE else None, "s")])
        other.append([f"incremental sync of {incremental.read} changed articles",
                      f"{incremental.duration:.2f} s", goal_text(incremental.duration, GOALS["incremental_s"], "s")])
        other.append([f"seeding the instance with {full.read} articles", f"{sync['seed_s']:.1f} s", "-"])
    if rss is not None:
        other.append([f"RSS of a process with the {rss_size}-article index, after the queries",
                      f"{rss['rss_mb']:.0f} MB", goal_text(rss["rss_mb"], GOALS["rss_mb"] if rss_size == GOAL_RSS_SIZE else None, "MB")])
        other.append(["of which anonymous memory (RssAnon; the rest is shared libraries and files)",
                      f"{rss['anon_mb']:.0f} MB", "-"])
        other.append(["peak RSS of that process, opening the index included",
                      f"{rss['peak_mb']:.0f} MB", "-"])
        other.append([f"opening the {rss_size}-article index, candidate snapshot included",
                      f"{rss['open_s']:.1f} s", "-"])
    if other:
        print(format_table(["measurement", "value", "goal"], other))
        print()
    print(machine_table())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated index sizes in articles (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per size (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed warm-up queries (default: %(default)s)")
    parser.add_argument("--sync-size", type=int, default=10000,
                        help="articles in the full sync benchmark; 0 skips it (default: %(default)s)")
    parser.add_argument("--changed", type=int, default=100,
                        help="articles changed before the incremental sync (default: %(default)s)")
    parser.add_argument("--no-rss", action="store_true", help="skip the memory measurement")
    parser.add_argument("--candidates", type=int,
                        help="articles the first search stage passes on (ranking.candidates; default: the setting's)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the corpus (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and print its path")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--instance-child", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.size_list = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    except ValueError:
        parser.error(f"--sizes {args.sizes!r} is invalid; pass integers such as 1000,10000")
    if not args.size_list or min(args.size_list) < 1:
        parser.error("--sizes needs at least one positive size")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.overrides)
        return
    if args.instance_child:
        instance_child(args.instance_child)
        return
    logging.basicConfig(level=logging.WARNING)
    quiet_bm25s()
    from config.settings import settings_for_tests

    workdir = Path(tempfile.mkdtemp(prefix="inward-search-speed-"))
    try:
        source = load_text_source(args.seed)
        rng = random.Random(args.seed)
        args.query_list = [rng.choice(source.queries) for _ in range(args.queries)]
        args.limit = settings_for_tests().knowledge.suggestions_limit
        articles = generate_articles(max(args.size_list + [args.sync_size]), source, args.seed)
        overrides = {"knowledge": {}}
        if args.candidates is not None:
            overrides["ranking"] = {"candidates": args.candidates}
        settings = settings_for_tests(**overrides)
        args.candidates_used = settings.ranking.candidates
        latency = []
        for size in args.size_list:
            print(f"measuring search latency at {size} articles ...", file=sys.stderr)
            latency.append(measure_latency(size, articles, args.query_list, settings, workdir, args.warmup))
        rss = None
        if not args.no_rss:
            print("measuring memory ...", file=sys.stderr)
            rss = measure_rss(workdir / f"index-{args.size_list[-1]}", args.query_list, overrides)
        sync = None
        if args.sync_size:
            print(f"measuring sync of {args.sync_size} articles ...", file=sys.stderr)
            sync = measure_sync(articles[:args.sync_size], args.changed, workdir, overrides)
        print_report(source, latency, sync, rss, args.size_list[-1], args)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
