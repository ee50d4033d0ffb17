"""Logging configured once at start-up, with secrets and tokens masked.

Every handler Inward installs carries a ``SecretMaskingFilter``. It replaces
with ``********`` the values of all secrets in the settings, bearer tokens,
JWTs and ``token=`` query parameters. It masks the message, the exception
text and the stack text, so library records (a logged request URL, say) are
masked too. Secrets shorter than ``MIN_MASKED_LENGTH`` are not masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import IO, Any

from config.secrets import MASK, Secret
from config.settings import Section

logger = logging.getLogger(__name__)

# A JWT is three base64url parts; the header always starts with '{"' -> "eyJ".
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
BEARER_PATTERN = re.compile(r"(?i)(bearer\s+)[^\s,;\"']+")
TOKEN_PARAM_PATTERN = re.compile(r"(?i)([?&](?:token|access_token|jwt)=)[^&\s\"']+")
# Shorter secrets would mask ordinary words in log lines.
MIN_MASKED_LENGTH = 4

_installed_handler: logging.Handler | None = None


def collect_secrets(settings: Section) -> list[str]:
    """Return the revealed values of every non-empty secret in the settings."""
    values: list[str] = []
    for _key, value in settings.items():
        if isinstance(value, Section):
            values.extend(collect_secrets(value))
        elif isinstance(value, Secret) and len(value.reveal()) >= MIN_MASKED_LENGTH:
            values.append(value.reveal())
    return values


def url_passwords(settings: Section) -> list[str]:
    """Return the passwords written into URL settings that are not secrets (``jobs.redis_url``, ``store.url``)."""
    from config.settings import url_passwords as passwords_in

    found = passwords_in(settings.jobs.redis_url) + passwords_in(settings.store.url)
    return [password for password in found if len(password) >= MIN_MASKED_LENGTH]


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values, JWTs, bearer tokens and token parameters with the mask."""
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = JWT_PATTERN.sub(MASK, text)
    text = BEARER_PATTERN.sub(lambda match: match.group(1) + MASK, text)
    return TOKEN_PARAM_PATTERN.sub(lambda match: match.group(1) + MASK, text)


class SecretMaskingFilter(logging.Filter):
    """Mask secrets in each record's message, exception text and stack text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if len(secret) >= MIN_MASKED_LENGTH]
        self._exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Section, *, stream: IO[str] | None = None) -> logging.Handler:
    """Install one masked handler on the root logger, replacing an earlier one.

    Calling it again (tests, a second ``create_app``) swaps the handler
    instead of adding another, so lines are never written twice.
    """
    global _installed_handler
    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)

    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.logging.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretMaskingFilter(collect_secrets(settings) + url_passwords(settings)))
    root.addHandler(handler)
    root.setLevel(settings.logging.level)
    # Alembic logs "Context impl ..." each time the store's revision is read,
    # which /healthz does; Store.upgrade logs the migrations it applies itself.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    # Alembic 1.16 and later also log one "setup plugin" line per plugin.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    _installed_handler = handler
    logger.debug("Logging configured: level %s, format %s", settings.logging.level, settings.logging.format)
    return handler
