"""The layering contract names every domain module, so a new one cannot slip past it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The edges, and packages that hold data or migrations rather than rules.
NOT_DOMAIN = {"web", "cli", "__main__.py", "__init__.py", "locale", "migrations", "sample_data"}


def test_the_domain_contract_names_every_domain_module() -> None:
    """Scenario: someone adds newsletter/x.py: the import-linter contract must list it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    domain_contract = config["tool"]["importlinter"]["contracts"][0]
    assert set(domain_contract["forbidden_modules"]) >= {"newsletter.web", "newsletter.cli"}
    modules = {
        f"newsletter.{path.stem}"
        for path in (ROOT / "newsletter").iterdir()
        if path.name not in NOT_DOMAIN
        and (path.suffix == ".py" or (path / "__init__.py").is_file())
    }
    assert modules - set(domain_contract["source_modules"]) == set()
