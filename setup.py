"""Package discovery: every package under newsletter/ and workers/, plus the top-level
templates/ folder shipped as newsletter.templates (metadata lives in pyproject.toml)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["newsletter", "newsletter.*", "workers", "workers.*"]),
        "newsletter.templates",
    ],
    package_dir={"newsletter.templates": "templates"},
)
