"""Trilingual weekly digest: subscriptions, editions and dispatch."""

__version__ = "0.1.0"
