"""``inward instance import`` and ``inward instance serve``, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from config.settings import settings_for_tests
from integration.instance import importer
from integration.instance.server import open_store
from inward.cli import cli

PROJECT_ROOT = Path(__file__).resolve().parents[3]
OOB_INCIDENTS = PROJECT_ROOT.parent / "shared" / "data" / "servicenow_oob_itsm_records" / "incident.json"


@pytest.fixture
def oob_incidents():
    if not OOB_INCIDENTS.exists():
        pytest.skip(f"OOB incident export not found at {OOB_INCIDENTS}")
    return OOB_INCIDENTS


def run_cli(*args):
    return CliRunner().invoke(cli, list(args), obj={}, env={"INWARD_CONFIG": ""})


def stored(data_dir, table, query=""):
    store = open_store(settings_for_tests(), data_dir)
    try:
        return store.query(table, query)
    finally:
        store.close()


def test_import_oob_incidents(tmp_path, oob_incidents):
    result = run_cli("instance", "import", str(oob_incidents), "--table", "incident", "--data", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert "Imported 67 new" in result.output
    rows = stored(tmp_path, "incident")
    assert len(rows) == 67
    first = stored(tmp_path, "incident", "number=INC0000001")[0]
    assert first["sys_id"] == "9c573169c611228700193229fff72400"
    # Display-value shapes: a {display_value, link} reference keeps the sys_id from the link,
    assert first["assigned_to"] == "46b87022a9fe198101a78787e40d7547"
    # and choice labels become values.
    assert first["priority"] == "1"
    assert first["state"] == "7"
    assert first["sys_class_name"] == "incident"


def test_import_twice_updates_instead_of_duplicating(tmp_path, oob_incidents):
    run_cli("instance", "import", str(oob_incidents), "--table", "incident", "--data", str(tmp_path))
    result = run_cli("instance", "import", str(oob_incidents), "--table", "incident", "--data", str(tmp_path))

    assert "0 new and 67 existing" in result.output
    assert len(stored(tmp_path, "incident")) == 67


def test_import_jsonv2_and_all_shape(tmp_path):
    export = tmp_path / "records.json"
    export.write_text(json.dumps({"records": [
        {"short_description": "v2", "caller_id": {"display_value": "Fred", "value": "a" * 32,
                                                  "link": "http://x/api/now/table/sys_user/" + "a" * 32}},
    ]}))

    report = _import(tmp_path, export, "incident")

    assert report.inserted == 1
    assert stored(tmp_path / "data", "incident")[0]["caller_id"] == "a" * 32


def _import(tmp_path, path, table):
    store = open_store(settings_for_tests(), tmp_path / "data")
    try:
        return importer.import_file(store, path, table)
    finally:
        store.close()


def test_malformed_json_names_the_line(tmp_path):
    export = tmp_path / "broken.json"
    export.write_text('{"result": [\n  {"short_description": "ok"},\n  {"short_description": }\n]}')

    result = run_cli("instance", "import", str(export), "--table", "incident", "--data", str(tmp_path))

    assert result.exit_code != 0
    assert "line 3" in result.output
    assert "Nothing was imported" in result.output


def test_bad_record_imports_nothing(tmp_path):
    export = tmp_path / "bad.json"
    export.write_text(json.dumps({"result": [
        {"short_description": "first"}, {"short_description": "second"},
        {"short_description": "third", "watch_list": ["not", "a", "string"]},
    ]}))

    result = run_cli("instance", "import", str(export), "--table", "incident", "--data", str(tmp_path))

    assert result.exit_code != 0
    assert "Record 2, field 'watch_list'" in result.output
    assert stored(tmp_path, "incident") == []


def test_bad_sys_id_rolls_back_the_whole_file(tmp_path):
    export = tmp_path / "bad_id.json"
    export.write_text(json.dumps({"result": [{"short_description": "ok"}, {"sys_id": "not-hex"}]}))

    with pytest.raises(importer.ImportFailed, match="Record 1"):
        _import(tmp_path, export, "incident")

    assert stored(tmp_path / "data", "incident") == []


@pytest.mark.parametrize("content, message", [
    ('{"rows": []}', '{"result": [...]}'),
    ('{"result": ["text"]}', "record 0 is a str"),
])
def test_wrong_file_shape_is_rejected(tmp_path, content, message):
    export = tmp_path / "shape.json"
    export.write_text(content)

    with pytest.raises(importer.ImportFailed) as raised:
        _import(tmp_path, export, "incident")

    assert message in str(raised.value)


def test_unknown_table_is_rejected(tmp_path):
    export = tmp_path / "empty.json"
    export.write_text('{"result": []}')

    result = run_cli("instance", "import", str(export), "--table", "incidnet", "--data", str(tmp_path))

    assert result.exit_code != 0
    assert "Invalid table incidnet" in result.output


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_runs_until_interrupted(tmp_path):
    port = free_port()
    environment = {**os.environ, "INWARD_CONFIG": "", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("inward")), "instance", "serve", "--port", str(port),
         "--data", str(tmp_path), "--user", "tester", "--password", "pw"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
        cwd=PROJECT_ROOT,
    )
    try:
        banner = [process.stdout.readline() for _ in range(6)]
        response = requests.get(f"http://127.0.0.1:{port}/api/now/table/incident", auth=("tester", "pw"),
                                timeout=10)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()

    assert "development and test double" in banner[0]
    assert any("tester" in line for line in banner)
    assert not any("pw)" in line for line in banner)
    assert response.status_code == 200
    assert process.returncode == 0
    assert "Instance stopped." in output


def ignore_sigint() -> None:
    """Start the child with SIGINT ignored, as a background shell job does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_signal_with_sigint_ignored(tmp_path, stop_signal):
    port = free_port()
    environment = {**os.environ, "INWARD_CONFIG": "", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("inward")), "instance", "serve", "--port", str(port),
         "--data", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
        cwd=PROJECT_ROOT, preexec_fn=ignore_sigint,
    )
    try:
        banner = [process.stdout.readline() for _ in range(6)]
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)

    assert "Press Ctrl-C to stop." in banner[-1]
    assert process.returncode == 0
    assert "Instance stopped." in output
