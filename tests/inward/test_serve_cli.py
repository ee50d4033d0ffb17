"""`inward serve` and `inward store`, run as a user would from a shell."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from inward.store import Store, set_cursor

INWARD = str(Path(sys.executable).with_name("inward"))
SECRET = "serve-test-secret-0123456789abcdef-01"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(tmp_path, **extra) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INWARD_")}
    env.update(
        INWARD_STORE__URL=f"sqlite:///{tmp_path}/var/inward.db",
        INWARD_INDEX__PATH=str(tmp_path / "index"),
        INWARD_AUTH__JWT_SECRET=SECRET,
        INWARD_SERVER__HOST="127.0.0.1",
        INWARD_LOGGING__FORMAT="json",
        INWARD_JOBS__ENABLED="false",
    )
    env.update(extra)
    return env


def get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


def wait_until_listening(process: subprocess.Popen, port: int, deadline_seconds: float = 30) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"inward serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"inward serve did not listen on port {port} within {deadline_seconds} s")


@pytest.fixture
def served(tmp_path):
    """Start `inward serve` on a free loopback port; stop it with SIGTERM afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [INWARD, "serve", "--port", str(port)],
        env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_listening(process, port)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


@pytest.mark.slow
def test_serve_answers_healthz_and_stops_on_sigterm(served, tmp_path):
    process, base_url = served
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "MAIN.toc").write_text("")
    store = Store(f"sqlite:///{tmp_path}/var/inward.db")
    with store.session() as session:
        set_cursor(session, name="knowledge", cursor={"sys_id": "", "last_run_on": "2026-12-04"})

    status, headers, body = get(f"{base_url}/healthz")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    log = process.stderr.read()

    assert status == 200
    assert body["store"] == {"reachable": True, "migrated": True}
    assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]
    assert process.returncode == 0
    assert "Inward serving on http://127.0.0.1:" in log
    assert "Inward stopped" in log


@pytest.mark.slow
def test_serve_rejects_bad_token_without_logging_it(served):
    process, base_url = served
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmVsIn0.c2lnbmF0dXJl"

    status, _, body = get(f"{base_url}/api/v1/auth/whoami?token={token}")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    log = process.stderr.read()

    assert status == 401
    assert body["error"]["code"] == "bad_signature"
    assert token not in log
    assert SECRET not in log


@pytest.mark.slow
def test_serve_starts_and_stops_scheduler(tmp_path):
    # The platform URL points at a closed loopback port, so the sync job fails fast and is logged.
    port = free_port()
    env = environment(tmp_path, INWARD_JOBS__ENABLED="true", INWARD_PLATFORM__URL=f"http://127.0.0.1:{free_port()}",
                      INWARD_PLATFORM__RETRY__ATTEMPTS="1")
    process = subprocess.Popen([INWARD, "serve", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(process, port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    log = process.stderr.read()

    assert process.returncode == 0
    assert "Scheduler started with jobs: knowledge.sync" in log
    assert "Scheduler stopped" in log


def ignore_sigint() -> None:
    """Start the child with SIGINT ignored, as a background shell job does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
def test_serve_stops_on_sigint_inherited_ignored(tmp_path):
    port = free_port()
    process = subprocess.Popen([INWARD, "serve", "--port", str(port)], env=environment(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ignore_sigint)
    try:
        wait_until_listening(process, port)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    log = process.stderr.read()

    assert process.returncode == 0
    assert "Received SIGINT, stopping" in log
    assert "Inward stopped" in log


def test_serve_without_secret_fails_before_listening(tmp_path):
    result = subprocess.run(
        [INWARD, "serve", "--port", str(free_port())],
        env=environment(tmp_path, INWARD_AUTH__JWT_SECRET=""), capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 1
    assert "INWARD_AUTH__JWT_SECRET" in result.stderr


def test_store_upgrade_then_current(tmp_path):
    env = environment(tmp_path)

    before = subprocess.run([INWARD, "store", "current"], env=env, capture_output=True, text=True, timeout=60)
    upgrade = subprocess.run([INWARD, "store", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    after = subprocess.run([INWARD, "store", "current"], env=env, capture_output=True, text=True, timeout=60)

    assert before.returncode == 1
    assert "none (empty database)" in before.stdout
    assert upgrade.returncode == 0, upgrade.stderr
    assert after.returncode == 0
    assert (tmp_path / "var" / "inward.db").is_file()


def test_store_unsupported_url_fails(tmp_path):
    env = environment(tmp_path, INWARD_STORE__URL="mysql://db.example.com/inward")

    result = subprocess.run([INWARD, "store", "upgrade"], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "store.url uses 'mysql'" in result.stderr


def test_wsgi_module_builds_app(tmp_path):
    script = (
        "import logging; from inward.wsgi import app; "
        "logging.getLogger('probe').info('secret is %s', 'serve-test-secret-0123456789abcdef-01'); "
        "print(app.name, sorted(app.extensions))"
    )

    result = subprocess.run([sys.executable, "-c", script], env=environment(tmp_path),
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "inward"
    assert "'inward'" in result.stdout
    assert "secret is ********" in result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "sidecar.example.com"])
def test_serve_rejects_dev_mode_off_loopback(tmp_path, host):
    # The check runs before binding, so no address other than loopback is ever opened.
    result = subprocess.run(
        [INWARD, "serve", "--host", host, "--port", str(free_port())],
        env=environment(tmp_path, INWARD_SERVER__DEV_MODE="true"), capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 1
    assert "server.dev_mode is on" in result.stderr
    assert host in result.stderr


def test_serve_unreachable_store_fails_cleanly(tmp_path):
    env = environment(tmp_path, INWARD_STORE__URL="postgresql+psycopg://postgres@127.0.0.1:1/inward?connect_timeout=2")

    result = subprocess.run([INWARD, "serve", "--port", str(free_port())], env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "State store at postgresql+psycopg://postgres@127.0.0.1:1/inward" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_port_in_use_fails_cleanly(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = subprocess.run([INWARD, "serve", "--port", str(port)], env=environment(tmp_path),
                                capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
