"""Shared fixtures; each fixtures module is owned by the package it serves."""

from tests.fixtures.services import *  # noqa: F401,F403
from tests.fixtures.instance import *  # noqa: F401,F403
