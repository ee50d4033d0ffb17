"""WSGI entry point for servers other than ``inward serve``, such as ``gunicorn inward.wsgi:app``.

Importing it loads the settings from ``$INWARD_CONFIG`` and the environment,
configures masked logging and builds the app. Unlike ``inward serve`` it
neither migrates the state store nor starts the periodic jobs: run
``inward store upgrade`` before starting the server, and run the jobs in an
``inward serve`` process or not at all.
"""

from __future__ import annotations

from config import load_settings
from inward.app import create_app
from inward.logging_setup import configure_logging

settings = load_settings()
configure_logging(settings)
app = create_app(settings)
