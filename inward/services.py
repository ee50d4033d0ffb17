"""The services container: one place that builds and owns long-lived clients.

Nothing connects at import time or in ``Services(settings)``. Each service
is built on first use, once, even when several request threads ask for it
at the same moment. Tests pass ready-made services to the constructor.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from config.settings import Section
from inward.auth import AgentDirectory, TokenBindings, TokenVerifier, resolve_agent_on_platform
from inward.store import Store

logger = logging.getLogger(__name__)


class Services:
    """Lazily built platform client, state store, knowledge index, agent directory, token verifier and token bindings."""

    def __init__(
        self,
        settings: Section,
        *,
        platform: Any = None,
        store: Store | None = None,
        index: Any = None,
        agents: AgentDirectory | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        self._built: dict[str, Any] = {
            name: value
            for name, value in {
                "platform": platform,
                "store": store,
                "index": index,
                "agents": agents,
                "verifier": verifier,
            }.items()
            if value is not None
        }
        self._lock = threading.RLock()
        # The running inward.jobs.Scheduler when `inward serve` started one, else None.
        self.scheduler: Any = None

    def _get(self, name: str, build) -> Any:
        service = self._built.get(name)
        if service is not None:
            return service
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
                logger.debug("Built service %s", name)
            return self._built[name]

    @property
    def platform(self) -> Any:
        """The ``PlatformClient`` for the configured instance."""

        def build():
            from integration.client import PlatformClient

            return PlatformClient.from_settings(self.settings)

        return self._get("platform", build)

    @property
    def store(self) -> Store:
        """The state store at ``store.url``; call ``.upgrade()`` before first use."""
        return self._get("store", lambda: Store(self.settings.store.url))

    @property
    def index(self) -> Any:
        """The knowledge index at ``index.path``."""

        def build():
            from knowledge.index import KnowledgeIndex

            return KnowledgeIndex(self.settings.index.path, settings=self.settings)

        return self._get("index", build)

    @property
    def agents(self) -> AgentDirectory:
        """The agent lookup, cached for ``auth.user_cache_ttl`` seconds."""

        def build():
            return AgentDirectory(
                lambda user_name: resolve_agent_on_platform(self.platform.records, user_name),
                ttl=self.settings.auth.user_cache_ttl,
            )

        return self._get("agents", build)

    @property
    def verifier(self) -> TokenVerifier:
        """The JWT verifier; building it raises ConfigError when the key is missing."""
        return self._get("verifier", lambda: TokenVerifier(self.settings.auth))

    @property
    def token_bindings(self) -> TokenBindings:
        """The jti-to-client bindings used when ``auth.jti_replay`` is ``bind``."""
        return self._get("token_bindings", lambda: TokenBindings(self.store))

    def close(self) -> None:
        """Close the platform client, the store and the index, where they were built."""
        with self._lock:
            for name in ("platform", "store", "index"):
                service = self._built.pop(name, None)
                if service is not None:
                    service.close()
