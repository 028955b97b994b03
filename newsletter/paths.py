"""Where the files shipped with the package live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """`templates/` is shipped as newsletter/templates; a checkout keeps it at the top."""
    installed = PACKAGE_DIR / "templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "templates"


def sample_data_dir() -> Path:
    return PACKAGE_DIR / "sample_data"


def locale_dir() -> Path:
    return PACKAGE_DIR / "locale"
