"""Settings schema, loading and validation, and the root of the error tree."""

from config.errors import ConfigError, InwardError
from config.secrets import Secret
from config.settings import Section, Settings, load_settings, settings_for_tests

__all__ = [
    "ConfigError",
    "InwardError",
    "Secret",
    "Section",
    "Settings",
    "load_settings",
    "settings_for_tests",
]
