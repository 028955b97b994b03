"""The public URLs that emails and pages link to, built from the configured base URL."""

from __future__ import annotations


def unsubscribe_url(base_url: str, token: str) -> str:
    """The List-Unsubscribe URL; its GET also opens the preference page."""
    return f"{base_url}/unsubscribe/{token}"


def confirm_url(base_url: str, token: str) -> str:
    return f"{base_url}/confirm/{token}"


def archive_url(base_url: str, lang: str, week: str | None = None) -> str:
    """An edition's page in one language (the "view in browser" link), or the archive."""
    return f"{base_url}/{lang}/archive/{week}" if week else f"{base_url}/{lang}/archive/"


def subscribe_url(base_url: str, lang: str) -> str:
    return f"{base_url}/{lang}/"


def feed_url(base_url: str, lang: str) -> str:
    """The archive's Atom feed in one language."""
    return f"{base_url}/{lang}/archive.atom"
