"""The edition's state machine: every status change goes through move()."""

from __future__ import annotations

from newsletter.errors import IllegalTransition
from newsletter.models import Edition, EditionStatus

S = EditionStatus

MOVES: dict[EditionStatus, frozenset[EditionStatus]] = {
    S.draft: frozenset({S.scheduled, S.sending, S.cancelled}),
    S.scheduled: frozenset({S.scheduled, S.sending, S.draft, S.cancelled}),
    S.sending: frozenset({S.paused, S.sent, S.cancelled}),
    S.paused: frozenset({S.sending, S.cancelled}),
    S.sent: frozenset(),
    S.cancelled: frozenset(),
}


def can_move(current: EditionStatus, to: EditionStatus) -> bool:
    return to in MOVES[current]


def move(edition: Edition, to: EditionStatus) -> None:
    """Change the edition's status, or raise IllegalTransition naming both states."""
    if not can_move(edition.status, to):
        raise IllegalTransition(
            f"edition {edition.week} is {edition.status}: it cannot become {to}"
        )
    edition.status = to
