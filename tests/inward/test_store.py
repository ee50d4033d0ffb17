"""The state store on SQLite and PostgreSQL: migrations, events, actions, cursors."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from inward.store import (
    Action,
    Event,
    Store,
    StoreError,
    TokenUse,
    bind_token,
    claim_action,
    complete_action,
    get_cursor,
    list_events,
    purge_token_uses,
    record_event,
    set_cursor,
)


@pytest.fixture
def fresh_postgres_url(postgres_url):
    """Yield the URL of a new empty database on the test server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url)
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"inward_store_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store(request, tmp_path):
    """Yield a Store on an empty database, once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/nested/var/inward.db"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    store = Store(url)
    yield store
    store.close()


@pytest.fixture
def store(empty_store):
    empty_store.upgrade()
    return empty_store


def test_upgrade_creates_tables_from_empty(empty_store):
    assert empty_store.current_revision() is None

    empty_store.upgrade()

    tables = set(inspect(empty_store.engine).get_table_names())
    assert {"events", "actions", "sync_state", "token_uses", "alembic_version"} <= tables
    assert empty_store.current_revision() == empty_store.head_revision()


def test_upgrade_twice_is_noop(store):
    revision = store.current_revision()

    store.upgrade()

    assert store.current_revision() == revision


def test_sqlite_parent_folder_created(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/a/b/inward.db")
    store.upgrade()
    store.close()

    assert (tmp_path / "a" / "b" / "inward.db").is_file()


@pytest.mark.parametrize("url", ["mysql://db.example.com/inward", "not a url"])
def test_unsupported_url_rejected(url):
    with pytest.raises(StoreError, match="store.url"):
        Store(url)


def test_ping_reports_reachable(store):
    assert store.ping() is True


def test_ping_reports_unreachable():
    # Port 1 on loopback refuses connections at once.
    store = Store("postgresql+psycopg://postgres@127.0.0.1:1/inward?connect_timeout=2")

    assert store.ping() is False


def test_event_recorded_and_queried(store):
    with store.session() as session:
        record_event(session, kind="suggestion_shown", agent_sys_id="a1", case_table="incident",
                     case_sys_id="c1", article_sys_id="k1", rank=1, detail={"query": "vpn", "scores": [1.5]})
        record_event(session, kind="article_attached", agent_sys_id="a1", case_sys_id="c1", article_sys_id="k1")
        record_event(session, kind="suggestion_shown", agent_sys_id="a2", case_sys_id="c2")

    with store.session() as session:
        shown_to_a1 = list_events(session, kind="suggestion_shown", agent_sys_id="a1")
        for_case = list_events(session, case_sys_id="c1")

    assert len(shown_to_a1) == 1
    assert shown_to_a1[0].detail == {"query": "vpn", "scores": [1.5]}
    assert shown_to_a1[0].rank == 1
    assert shown_to_a1[0].case_table == "incident"
    assert [event.kind for event in for_case] == ["suggestion_shown", "article_attached"]


def test_event_time_is_aware_utc(store):
    before = datetime.now(timezone.utc)
    with store.session() as session:
        record_event(session, kind="k", agent_sys_id="a1")

    with store.session() as session:
        (event,) = list_events(session)

    assert event.created_at.tzinfo is not None
    assert event.created_at >= before - timedelta(seconds=1)


def test_events_since_filter(store):
    with store.session() as session:
        record_event(session, kind="old", agent_sys_id="a1")
    cutoff = datetime.now(timezone.utc) + timedelta(hours=1)

    with store.session() as session:
        assert list_events(session, since=cutoff) == []


def test_event_with_unserializable_detail_changes_nothing(store):
    with pytest.raises(StoreError, match="detail is not JSON-serializable"):
        with store.session() as session:
            record_event(session, kind="ok", agent_sys_id="a1")
            record_event(session, kind="bad", agent_sys_id="a1", detail={"when": object()})

    with store.session() as session:
        assert session.scalars(select(Event)).all() == []


def test_claim_action_twice_returns_existing(store):
    with store.session() as session:
        first, first_created = claim_action(session, key="run-1:step-2", kind="work_note")
    with store.session() as session:
        second, second_created = claim_action(session, key="run-1:step-2", kind="work_note")

    assert first_created is True
    assert second_created is False
    assert second.id == first.id
    assert second.status == "pending"


def test_claim_action_twice_in_one_session(store):
    with store.session() as session:
        first, _ = claim_action(session, key="k", kind="comment")
        second, created = claim_action(session, key="k", kind="comment")

    assert created is False
    assert second.id == first.id


def test_claim_action_race_creates_one_row(store):
    """Two sessions claiming one key at the same moment get a single action between them."""
    barrier = threading.Barrier(2)
    outcomes: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            with store.session() as session:
                barrier.wait(timeout=10)
                action, created = claim_action(session, key="race-key", kind="attach")
                outcomes.append((action.id, created))
        except BaseException as error:  # collected so the main thread's asserts report it
            errors.append(error)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(created for _, created in outcomes) == [False, True]
    assert len({action_id for action_id, _ in outcomes}) == 1
    with store.session() as session:
        assert len(session.scalars(select(Action)).all()) == 1


def test_complete_action_stores_result(store):
    with store.session() as session:
        claim_action(session, key="k1", kind="attach")
    with store.session() as session:
        complete_action(session, key="k1", result={"m2m_sys_id": "abc", "count": 2})

    with store.session() as session:
        action, created = claim_action(session, key="k1", kind="attach")

    assert created is False
    assert action.status == "done"
    assert action.result == {"m2m_sys_id": "abc", "count": 2}


def test_complete_unknown_action_rejected(store):
    with pytest.raises(StoreError, match="call claim_action first"):
        with store.session() as session:
            complete_action(session, key="never-claimed", result=None)


def test_empty_action_key_rejected(store):
    with pytest.raises(StoreError, match="key is empty"):
        with store.session() as session:
            claim_action(session, key="", kind="attach")


def test_cursor_missing_is_none(store):
    with store.session() as session:
        assert get_cursor(session, name="knowledge") is None


def test_cursor_round_trip_keeps_datetime(store):
    updated_on = datetime(2026, 11, 30, 8, 15, 0, tzinfo=timezone.utc)
    with store.session() as session:
        set_cursor(session, name="knowledge", cursor=(updated_on, "0a1b2c3d4e5f60718293a4b5c6d7e8f9"))

    with store.session() as session:
        cursor = get_cursor(session, name="knowledge")

    assert cursor == [updated_on, "0a1b2c3d4e5f60718293a4b5c6d7e8f9"]
    assert cursor[0].tzinfo is not None


def test_cursor_overwritten(store):
    with store.session() as session:
        set_cursor(session, name="community", cursor={"page": 1})
    with store.session() as session:
        set_cursor(session, name="community", cursor={"page": 2, "seen": ["a", "b"]})

    with store.session() as session:
        assert get_cursor(session, name="community") == {"page": 2, "seen": ["a", "b"]}


def test_store_cursor_methods_round_trip(store):
    assert store.load_cursor("knowledge") is None

    store.save_cursor("knowledge", {"sys_id": "a1", "page": 3})

    assert store.load_cursor("knowledge") == {"sys_id": "a1", "page": 3}


def test_cursor_with_unserializable_value_rejected(store):
    with pytest.raises(StoreError, match="cursor is not JSON-serializable"):
        with store.session() as session:
            set_cursor(session, name="knowledge", cursor={"bad": {1, 2}})


def test_token_bound_to_first_client(store):
    expires_at = datetime.now(timezone.utc) + timedelta(minutes=15)
    with store.session() as session:
        first = bind_token(session, jti="jti-1", client="a" * 64, expires_at=expires_at)
    with store.session() as session:
        same = bind_token(session, jti="jti-1", client="a" * 64, expires_at=expires_at)
        other = bind_token(session, jti="jti-1", client="b" * 64, expires_at=expires_at)

    assert first is True
    assert same is True
    assert other is False


def test_expired_token_bindings_purged(store):
    now = datetime.now(timezone.utc)
    with store.session() as session:
        bind_token(session, jti="old", client="a" * 64, expires_at=now - timedelta(minutes=1))
        bind_token(session, jti="live", client="a" * 64, expires_at=now + timedelta(minutes=15))

    with store.session() as session:
        removed = purge_token_uses(session, before=now)
    with store.session() as session:
        remaining = session.scalars(select(TokenUse.jti)).all()

    assert removed == 1
    assert remaining == ["live"]


def test_migrations_match_models(store):
    """The migrated schema and the SQLAlchemy models describe the same tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from inward.store.models import Base

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


def test_downgrade_to_base_drops_tables(store):
    from alembic import command

    from inward.store import alembic_config

    with store.engine.begin() as connection:
        command.downgrade(alembic_config(connection=connection), "base")

    assert store.current_revision() is None
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
