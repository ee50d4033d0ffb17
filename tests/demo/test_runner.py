"""The ``inward demo`` command, run as a user would: a subprocess on free loopback ports."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from inward.cli import cli
from inward.demo.runner import demo_settings

START_TIMEOUT = 120
STOP_TIMEOUT = 30


def clean_environment() -> dict[str, str]:
    """Return the environment without INWARD_* settings, so only the test's options apply."""
    return {name: value for name, value in os.environ.items() if not name.startswith("INWARD_")}


def read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def wait_for_banner(process: subprocess.Popen, lines: queue.Queue) -> list[str]:
    """Collect stdout until the development token line has been printed, or fail."""
    seen: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"inward demo exited with {process.wait()} before printing its URLs: {seen}")
        seen.append(line)
        if len(seen) >= 2 and seen[-2].strip().startswith("Development token"):
            return seen
    pytest.fail(f"inward demo printed no token within {START_TIMEOUT} s: {seen}")


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def labelled_url(lines: list[str], label: str) -> str:
    for line in lines:
        match = re.match(rf"\s+{label}:\s+(http://\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError(f"no {label} URL in the demo output: {lines}")


@pytest.fixture
def demo_process(tmp_path):
    pytest.importorskip("inward.app", reason="inward.app.create_app is not available yet")
    command = [sys.executable, "-c", "from inward.cli import main; main()", "demo",
               "--port", "0", "--instance-port", "0", "--data", str(tmp_path / "demo")]
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, cwd=tmp_path, env=clean_environment(), text=True,
                                   stdout=subprocess.PIPE, stderr=stderr)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        yield process, wait_for_banner(process, lines), stderr_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@pytest.mark.slow
def test_demo_serves_then_stops_on_sigint(demo_process):
    process, lines, stderr_path = demo_process
    sidecar = labelled_url(lines, "Sidecar")
    instance = labelled_url(lines, "Instance")
    token = lines[-1].strip()
    assert sidecar.startswith("http://127.0.0.1:")
    assert instance.startswith("http://127.0.0.1:")

    status, body = get(f"{sidecar}/healthz")
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"

    status, body = get(f"{sidecar}/api/v1/auth/whoami", token)
    assert status == 200, body
    assert json.loads(body)["user_name"] == "daniel.kim"

    widget = next(line.strip() for line in lines if "/widgets/suggestions?" in line)
    status, body = get(widget)
    assert status == 200
    assert b"<html" in body.lower()

    status, _ = get(f"{instance}/api/now/table/kb_knowledge")
    assert status == 401

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=STOP_TIMEOUT) == 0
    assert token not in stderr_path.read_text()


@pytest.mark.slow
def test_demo_reseeds_nothing_on_restart(tmp_path):
    pytest.importorskip("inward.app", reason="inward.app.create_app is not available yet")
    command = [sys.executable, "-c", "from inward.cli import main; main()", "demo",
               "--port", "0", "--instance-port", "0", "--data", str(tmp_path / "demo")]
    outputs = []
    for _ in range(2):
        process = subprocess.Popen(command, cwd=tmp_path, env=clean_environment(), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
        try:
            banner = wait_for_banner(process, lines)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=STOP_TIMEOUT) == 0
        while (line := lines.get(timeout=STOP_TIMEOUT)) is not None:
            banner.append(line)
        outputs.append(next(line for line in banner if "Demo data:" in line))
    assert " 0 inserted" not in outputs[0]
    assert "0 inserted, 0 updated" in outputs[1]


@pytest.mark.slow
def test_demo_fails_cleanly_on_busy_port(tmp_path):
    pytest.importorskip("inward.app", reason="inward.app.create_app is not available yet")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [sys.executable, "-c", "from inward.cli import main; main()", "demo",
                   "--port", str(port), "--instance-port", "0", "--data", str(tmp_path / "demo")]
        result = subprocess.run(command, cwd=tmp_path, env=clean_environment(), text=True,
                                capture_output=True, timeout=START_TIMEOUT)
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert re.search(r"Instance on http://127\.0\.0\.1:\d+ stopped", result.stderr)
    assert "Inward demo stopped" in result.stderr


def test_reset_refuses_a_folder_with_other_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["demo", "--reset", "--data", str(folder)], obj={})
    assert result.exit_code != 0
    assert "notes.txt" in result.output
    assert (folder / "notes.txt").read_text() == "keep me"


def test_demo_settings_use_a_random_jwt_secret(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("INWARD_"):
            monkeypatch.delenv(name)
    first = demo_settings(None, tmp_path, port=None, instance_port=None)
    second = demo_settings(None, tmp_path, port=None, instance_port=None)
    assert first.auth.jwt_secret
    assert first.auth.jwt_secret != second.auth.jwt_secret
    assert first.server.dev_mode is True
    assert first.store.url.endswith(str(Path(tmp_path, "inward.db").resolve()))
    assert first.index.path == str(tmp_path / "index")


def test_demo_settings_keep_a_configured_jwt_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("INWARD_AUTH__JWT_SECRET", "configured-secret-for-the-demo-test")
    settings = demo_settings(None, tmp_path, port=8123, instance_port=0)
    assert settings.auth.jwt_secret.reveal() == "configured-secret-for-the-demo-test"
    assert settings.server.port == 8123
    assert settings.instance.port == 0
