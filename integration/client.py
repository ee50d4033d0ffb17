"""The platform client: one object that contains the transport and the records layer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from integration.records import Records
from integration.transport import Transport

logger = logging.getLogger(__name__)


class PlatformClient:
    """The Table API client the rest of Inward uses; close it when done."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.records = Records(transport)

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> PlatformClient:
        """Build the client from full settings.

        An empty ``platform.url`` means the embedded instance: its address
        comes from ``instance.host`` and ``instance.port``, and its
        credentials from ``instance.user`` and ``instance.password`` unless
        ``platform.password`` is set.
        """
        platform = resolve_platform(settings)
        logger.info("Platform client for %s (%s auth)", platform.url, platform.auth)
        return cls(Transport(platform, sleep=sleep, clock=clock))

    def close(self) -> None:
        """Close the HTTP session."""
        self.transport.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def resolve_platform(settings: Any) -> Any:
    """Return the ``platform`` section, filled in from ``instance`` when its url is empty."""
    platform = settings.platform
    if platform.url:
        return platform
    instance = settings.instance
    url = f"http://{instance.host}:{instance.port}"
    if platform.password:
        return platform.replace(url=url)
    return platform.replace(url=url, auth="basic", user=instance.user, password=instance.password)
