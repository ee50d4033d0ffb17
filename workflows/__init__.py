"""Automated requests against secondary systems (built in a later issue)."""
