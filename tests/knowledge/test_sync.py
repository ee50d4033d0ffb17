"""Tests of the knowledge sync against the embedded instance, a real index and SQLite state."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

import knowledge.sync as sync_module
from integration.client import PlatformClient
from inward.cli import cli
from inward.store import Store, get_cursor
from knowledge.index import KnowledgeIndex
from knowledge.sync import rebuild_index, sync_knowledge

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
# Seeded articles carry timestamps before NOW; updates made by the instance
# during a test get the real clock, which sorts after them.
SEEDED_ON = "2026-11-20 08:00:00"


class Harness:
    """The platform records, index and state store a sync works with, plus seeding helpers."""

    def __init__(self, instance, tmp_path, *, batch_size=3, page_size=2) -> None:
        base = instance.platform_settings()
        self.settings = base.replace(
            platform=base.platform.replace(page_size=page_size),
            index=base.index.replace(path=str(tmp_path / "index")),
            store=base.store.replace(url=f"sqlite:///{tmp_path / 'state.db'}"),
            knowledge=base.knowledge.replace(sync_batch_size=batch_size, reconcile_interval_hours=24),
        )
        self.instance = instance
        self.client = PlatformClient.from_settings(self.settings)
        self.index = KnowledgeIndex(self.settings.index.path, settings=self.settings)
        self.store = Store(self.settings.store.url)
        self.store.upgrade()
        self.kb = self.add_kb("IT Support")

    @property
    def parts(self):
        return (self.client.records, self.index, self.store)

    def sync(self, *, full=False, now=NOW, progress=None):
        return sync_knowledge(self.parts, settings=self.settings, full=full, now=now, progress=progress)

    def add_kb(self, title: str) -> str:
        return self.instance.store.insert("kb_knowledge_base", {"title": title})["sys_id"]

    def add_article(self, title: str, *, updated_on: str = SEEDED_ON, **values) -> str:
        record = {
            "short_description": title,
            "text": f"<p>{title} steps for agents.</p>",
            "kb_knowledge_base": self.kb,
            "workflow_state": "published",
            "active": "true",
            "sys_updated_on": updated_on,
            **values,
        }
        return self.instance.store.insert("kb_knowledge", record)["sys_id"]

    def update(self, sys_id: str, **values) -> None:
        self.instance.store.update("kb_knowledge", sys_id, values)

    def cursor(self):
        with self.store.session() as session:
            return get_cursor(session, name="knowledge")

    def close(self) -> None:
        self.index.close()
        self.client.close()
        self.store.close()


@pytest.fixture
def harness(instance, tmp_path):
    built = Harness(instance, tmp_path)
    yield built
    built.close()


def indexed_titles(index: KnowledgeIndex) -> set[str]:
    return {index.get(sys_id)["title"] for sys_id in index.ids()}


def test_full_sync_indexes_live_articles_only(harness):
    live = harness.add_article("Reset a VPN token")
    due_today = harness.add_article("Printer driver update", valid_to=TODAY.isoformat())
    harness.add_article("Draft mailbox quota", workflow_state="draft")
    harness.add_article("Retired fax setup", workflow_state="retired")
    harness.add_article("Inactive badge reader", active="false")
    harness.add_article("Expired Windows 7 guide", valid_to=(TODAY - timedelta(days=1)).isoformat())
    harness.add_article("Pending retirement modem", workflow_state="pending_retirement")

    report = harness.sync(full=True)

    assert harness.index.ids() == {live, due_today}
    assert report.read == 7
    assert report.indexed == 2
    assert report.skipped == 5
    assert report.removed == 0
    assert report.reconciled is True
    assert harness.index.get(live)["kb_title"] == "IT Support"


def test_sync_cursor_saved_after_last_batch(harness):
    ids = [harness.add_article(f"Article {n}", updated_on=f"2026-11-20 08:00:0{n}") for n in range(5)]

    report = harness.sync()

    assert report.cursor == (datetime(2026, 11, 20, 8, 0, 4, tzinfo=timezone.utc), ids[4])
    assert harness.cursor()["sys_id"] == ids[4]
    assert harness.cursor()["sys_updated_on"] == report.cursor[0]


def test_update_moves_cursor_and_reindexes(harness):
    first = harness.add_article("Outlook crashes on start")
    harness.add_article("Teams audio missing")
    harness.sync()

    harness.update(first, short_description="Outlook crashes after the update")
    report = harness.sync()

    assert report.read == 1
    assert report.indexed == 1
    assert report.cursor[1] == first
    assert report.cursor[0] > datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    assert harness.index.get(first)["title"] == "Outlook crashes after the update"
    assert len(harness.index.ids()) == 2


def test_incremental_sync_without_changes_reads_nothing(harness):
    harness.add_article("Wi-Fi guest access")
    harness.sync()

    report = harness.sync()

    assert report.read == 0
    assert report.indexed == 0
    assert len(harness.index.ids()) == 1


def test_emptied_index_triggers_full_sync(harness):
    harness.add_article("Wi-Fi guest access")
    harness.add_article("Printer offline")
    harness.sync()
    harness.index.rebuild([])

    report = harness.sync()

    assert report.full is True
    assert report.indexed == 2
    assert indexed_titles(harness.index) == {"Wi-Fi guest access", "Printer offline"}


def test_cursor_from_other_platform_triggers_full_sync(harness):
    harness.add_article("Wi-Fi guest access")
    harness.sync()
    other = harness.settings.platform.replace(url=harness.instance.url + "/")
    harness.settings = harness.settings.replace(platform=other)
    state = sync_module.load_state(harness.store)
    state.extra["platform"] = "https://old.example.service-now.com"
    sync_module.save_state(harness.store, state)

    report = harness.sync()

    assert report.full is True
    assert report.read == 1
    assert harness.cursor()["platform"] == harness.instance.url


@pytest.mark.parametrize(
    "change",
    [
        {"workflow_state": "retired"},
        {"workflow_state": "draft"},
        {"active": "false"},
        {"valid_to": "2026-12-03"},
        {"workflow_state": "outdated"},
    ],
    ids=["retired", "unpublished", "inactive", "valid_to_past", "outdated"],
)
def test_change_removes_article(harness, change):
    target = harness.add_article("SAP password reset")
    other = harness.add_article("SAP client install")
    harness.sync()

    harness.update(target, **change)
    report = harness.sync()

    assert harness.index.ids() == {other}
    assert report.removed == 1
    assert report.read == 1


def test_deleted_article_removed_by_reconciliation(harness):
    target = harness.add_article("Legacy CRM login")
    other = harness.add_article("New CRM login")
    harness.sync()
    harness.instance.store.delete("kb_knowledge", target)

    early = harness.sync(now=NOW + timedelta(hours=1))
    assert early.reconciled is False
    assert target in harness.index.ids()

    late = harness.sync(now=NOW + timedelta(hours=25))
    assert late.reconciled is True
    assert late.removed == 1
    assert harness.index.ids() == {other}


def test_reconcile_log_lists_only_removed_ids(harness, caplog):
    target = harness.add_article("Legacy CRM login")
    harness.add_article("New CRM login")

    with caplog.at_level(logging.INFO, logger="knowledge.sync"):
        harness.sync(full=True)
    nothing_removed = [message for message in caplog.messages if message.startswith("Reconciled")]
    caplog.clear()
    harness.instance.store.delete("kb_knowledge", target)
    with caplog.at_level(logging.INFO, logger="knowledge.sync"):
        harness.sync(full=True)
    one_removed = [message for message in caplog.messages if message.startswith("Reconciled")]

    assert nothing_removed == ["Reconciled the index: 2 articles kept, 0 removed"]
    assert one_removed == [f"Reconciled the index: 1 articles kept, 1 removed ({target})"]


def test_full_sync_reconciles_deleted_article(harness):
    target = harness.add_article("Old expense tool")
    harness.sync()
    harness.instance.store.delete("kb_knowledge", target)

    report = harness.sync(full=True, now=NOW + timedelta(minutes=5))

    assert report.removed == 1
    assert harness.index.ids() == set()


def test_valid_to_passing_without_update_removes(harness):
    expiring = harness.add_article("Holiday rota 2026", valid_to=TODAY.isoformat())
    lasting = harness.add_article("Holiday policy")
    harness.sync()
    assert harness.index.ids() == {expiring, lasting}

    # 13 hours later it is the next day, but reconciliation is not yet due.
    report = harness.sync(now=NOW + timedelta(hours=13))

    assert report.reconciled is False
    assert report.removed == 1
    assert harness.index.ids() == {lasting}


def test_republished_article_comes_back(harness):
    target = harness.add_article("Citrix receiver setup", workflow_state="draft")
    harness.sync()
    assert harness.index.ids() == set()

    harness.update(target, workflow_state="published")
    report = harness.sync()

    assert report.indexed == 1
    assert harness.index.ids() == {target}


def test_priors_from_feedback_and_attachments(harness, instance):
    rated = harness.add_article("Reset MFA device")
    unrated = harness.add_article("Order a monitor")
    for useful in ("yes", "yes", "yes", "no", ""):
        instance.store.insert("kb_feedback", {"article": rated, "useful": useful})
    case = instance.store.insert("incident", {"short_description": "MFA lost"})["sys_id"]
    other_case = instance.store.insert("incident", {"short_description": "MFA new phone"})["sys_id"]
    for task in (case, other_case):
        instance.store.insert("m2m_kb_task", {"kb_knowledge": rated, "task": task})

    harness.sync()

    assert harness.index.get(rated)["helpful_ratio"] == pytest.approx(0.75)
    assert harness.index.get(rated)["attach_count"] == 2
    assert harness.index.get(unrated).get("helpful_ratio") is None
    assert harness.index.get(unrated)["attach_count"] == 0


@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_equal_timestamps_across_pages(instance, tmp_path, page_size):
    harness = Harness(instance, tmp_path, batch_size=2, page_size=page_size)
    try:
        ids = {harness.add_article(f"Same second {n}") for n in range(7)}

        report = harness.sync()

        assert harness.index.ids() == ids
        assert report.read == 7
        assert harness.index.count() == 7
    finally:
        harness.close()


def test_crash_after_commit_before_cursor_save(harness, monkeypatch):
    ids = {harness.add_article(f"Same second {n}") for n in range(7)}
    original = sync_module.save_state
    saves = []

    def crash_on_second_save(store, state):
        saves.append(state.sys_id)
        if len(saves) == 2:
            raise RuntimeError("process killed")
        original(store, state)

    monkeypatch.setattr(sync_module, "save_state", crash_on_second_save)
    with pytest.raises(RuntimeError, match="process killed"):
        harness.sync()
    monkeypatch.setattr(sync_module, "save_state", original)

    # The second batch reached the index but its cursor was never saved.
    assert len(harness.index.ids()) == 6
    assert harness.cursor()["sys_id"] == saves[0]

    report = harness.sync()

    assert report.read == 4
    assert harness.index.ids() == ids
    assert harness.index.count() == 7


def test_crash_before_commit_resumes(harness, monkeypatch):
    ids = {harness.add_article(f"Same second {n}") for n in range(7)}
    original = harness.index.upsert
    calls = []

    def crash_on_second_upsert(docs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(docs)

    monkeypatch.setattr(harness.index, "upsert", crash_on_second_upsert)
    with pytest.raises(RuntimeError, match="disk full"):
        harness.sync()
    monkeypatch.setattr(harness.index, "upsert", original)
    assert len(harness.index.ids()) == 3

    report = harness.sync()

    assert report.read == 4
    assert harness.index.ids() == ids
    assert harness.index.count() == 7


def test_progress_reports_each_batch(harness):
    for n in range(7):
        harness.add_article(f"Article {n}")
    counts = []

    harness.sync(progress=counts.append)

    assert counts == [3, 3, 1]


def test_rebuild_indexes_live_and_resets_cursor(harness):
    live = harness.add_article("Reset a VPN token")
    harness.add_article("Draft mailbox quota", workflow_state="draft")
    harness.sync()
    stale = harness.add_article("Unsynced article")
    harness.instance.store.delete("kb_knowledge", live)

    report = rebuild_index(harness.parts, settings=harness.settings, now=NOW)

    assert harness.index.ids() == {stale}
    assert report.read == 2
    assert report.indexed == 1
    assert report.skipped == 1
    assert harness.cursor()["sys_id"] == report.cursor[1]
    assert harness.sync().read == 0


def test_visibility_rules_refreshed_by_sync(harness, instance):
    from knowledge.visibility import Visibility, VisibilityRules

    criteria = instance.store.insert("user_criteria", {"name": "Nobody listed"})["sys_id"]
    instance.store.insert("kb_uc_can_read_mtom", {"kb_knowledge_base": harness.kb, "user_criteria": criteria})
    visibility = Visibility(VisibilityRules(knowledge_bases={}, criteria={}), harness.settings)
    records, index, store = harness.parts
    parts = sync_module.SyncParts(records=records, index=index, store=store,
                                  settings=harness.settings, visibility=visibility)

    sync_knowledge(parts, now=NOW)

    base = visibility.rules.knowledge_bases[harness.kb]
    assert base.can_read_user_criteria == [criteria]
    assert criteria in visibility.rules.criteria


def test_cli_sync_and_rebuild(harness, tmp_path, monkeypatch):
    harness.add_article("Reset a VPN token")
    harness.add_article("Draft mailbox quota", workflow_state="draft")
    config = tmp_path / "inward.yaml"
    config.write_text(json.dumps({
        "platform": {"url": harness.instance.url, "user": harness.instance.user, "page_size": 2},
        "index": {"path": harness.settings.index.path},
        "store": {"url": harness.settings.store.url},
    }))
    env = {"INWARD_PLATFORM__PASSWORD": harness.instance.password, "INWARD_CONFIG": str(config)}
    runner = CliRunner()

    synced = runner.invoke(cli, ["sync", "knowledge", "--full", "--json"], env=env, catch_exceptions=False)
    rebuilt = runner.invoke(cli, ["index", "rebuild"], env=env, catch_exceptions=False)

    assert synced.exit_code == 0, synced.output
    report = json.loads(synced.stdout)
    assert report["read"] == 2
    assert report["indexed"] == 1
    assert "Syncing articles: 2 read" in synced.stderr
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.startswith("read 2, indexed 1, removed 0")


def test_cli_reports_unreachable_platform(tmp_path):
    config = tmp_path / "inward.yaml"
    config.write_text(json.dumps({
        # Port 9 (discard) on loopback has no listener here, so the connection is refused.
        "platform": {"url": "http://127.0.0.1:9", "retry": {"attempts": 1}},
        "index": {"path": str(tmp_path / "index")},
        "store": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
    }))
    runner = CliRunner()

    result = runner.invoke(cli, ["sync", "knowledge", "--no-progress"],
                           env={"INWARD_CONFIG": str(config), "INWARD_PLATFORM__PASSWORD": "x"})

    assert result.exit_code == 1
    assert "Error:" in result.stderr
    assert "Traceback" not in result.output


def test_read_error_keeps_committed_batches(harness, monkeypatch):
    from integration.errors import PlatformUnavailable

    ids = [harness.add_article(f"Article {n}", updated_on=f"2026-11-20 08:00:0{n}") for n in range(7)]
    real_list = sync_module.list_articles_updated_since

    def failing_list(records, *, cursor=None):
        for count, article in enumerate(real_list(records, cursor=cursor)):
            if count == 4:
                raise PlatformUnavailable("The platform answered 503; retry later.")
            yield article

    monkeypatch.setattr(sync_module, "list_articles_updated_since", failing_list)
    with pytest.raises(PlatformUnavailable):
        harness.sync()
    monkeypatch.setattr(sync_module, "list_articles_updated_since", real_list)

    # The first batch of three was committed; the fourth article was read but never indexed.
    assert harness.index.ids() == set(ids[:3])
    assert harness.cursor()["sys_id"] == ids[2]

    report = harness.sync()

    assert report.read == 4
    assert harness.index.ids() == set(ids)


def test_scheduled_job_runs_sync(harness):
    from inward.jobs import Scheduler
    from knowledge.sync import schedule_knowledge_sync

    class FakeServices:
        settings = harness.settings
        index = harness.index
        store = harness.store

        class platform:
            records = harness.client.records

    article = harness.add_article("Scheduled sync article")
    scheduler = Scheduler(clock=lambda: 0.0)
    schedule_knowledge_sync(scheduler, FakeServices())

    for worker in scheduler.run_pending():
        worker.join(30)

    job = scheduler.job("knowledge.sync")
    assert job.runs == 1
    assert job.failures == 0
    assert job.interval == harness.settings.knowledge.sync_interval_minutes * 60
    assert harness.index.ids() == {article}
