"""Fixtures for browser tests: the sidecar served on a loopback port, and headless Chromium."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.widgets.helpers import build_app, seed_platform, widget_settings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def seeded(instance):
    return seed_platform(instance.store)


@pytest.fixture
def live_sidecar(instance, tmp_path, seeded):
    """Serve the sidecar (dev mode on) over the test seed; yield (base URL, settings)."""
    yield from serve_sidecar(instance, tmp_path)


@pytest.fixture
def demo_sidecar(instance, tmp_path):
    """Serve the sidecar (dev mode on) over the demo company's data; yield (base URL, settings)."""
    from inward.demo.seed import seed

    seed(instance.store)
    yield from serve_sidecar(instance, tmp_path)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log line, which would print the token in widget URLs."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def serve_sidecar(instance, tmp_path):
    """Sync the index, serve the app on a free loopback port and yield (base URL, settings)."""
    settings = widget_settings(instance, tmp_path, dev_mode=True)
    app, services = build_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="sidecar-e2e", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", settings
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        services.close()


@pytest.fixture
def browser(chromium_executable):
    """Yield a headless Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
