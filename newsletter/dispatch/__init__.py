"""Planning and running a send: deliveries, batches, retries, schedules and progress.

planning    start_send: the edition moves to sending; plan_rest: deliveries planned in chunks
sending     send_batch: claim, substitute, send over one connection, record in bulk
control     pause, resume, cancel, retry_failed, progress
scheduling  tick: due schedules, the weekly rule, stale claims, lost batches, purge
testsend    send_test: one copy of each variant to a staff address
welcome     welcome: the latest edition for a reader who has just confirmed
store       the set-based SQL behind all of these
"""

from newsletter.dispatch.confirmation import (
    LateConfirmation,
    late_confirmations,
    send_confirmation,
)
from newsletter.dispatch.control import (
    Progress,
    cancel,
    pause,
    progress,
    resume,
    retry_failed,
)
from newsletter.dispatch.planning import SendStart, plan_rest, start_send
from newsletter.dispatch.scheduling import TickReport, tick, weekly_slot
from newsletter.dispatch.sending import BatchReport, send_batch
from newsletter.dispatch.states import move
from newsletter.dispatch.testsend import send_test
from newsletter.dispatch.welcome import welcome

__all__ = [
    "BatchReport",
    "LateConfirmation",
    "Progress",
    "SendStart",
    "TickReport",
    "cancel",
    "late_confirmations",
    "move",
    "pause",
    "plan_rest",
    "progress",
    "resume",
    "retry_failed",
    "send_batch",
    "send_confirmation",
    "send_test",
    "start_send",
    "tick",
    "weekly_slot",
    "welcome",
]
