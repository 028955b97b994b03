"""Planning and running a send: deliveries, batches, retries, schedules and progress.

The units of a send, named once here and so everywhere:

delivery    one (edition, reader) row: queued -> sending -> sent | failed | skipped
plan chunk  the readers planned in one transaction (NEWSLETTER_PLAN_CHUNK), each chunk
            committed with its batches
batch       a range of delivery ids handed to one `send_batch` job (NEWSLETTER_BATCH_SIZE)
claim       the deliveries a batch takes at once (CLAIM_SIZE, 100), marked `sending`; the
            ClaimKeeper renews them by time until their results are written
stretch     the messages of a claim sent between two writes of results (FLUSH_EVERY, 50;
            about a second's worth under a rate limit): the crash window per worker; the
            claimed readers are checked again right before each stretch goes on the wire

planning    start_send: the edition moves to sending; plan_rest: deliveries planned in chunks
sending     Sender (one per process) and send_batch: claim, check, send, record in bulk
keeper      ClaimKeeper and patiently: claims renewed by time, writes that outlast an outage
confirmation  the double opt-in email and its retries by the tick
control     pause, resume, cancel, retry_failed, progress
scheduling  tick: due schedules, the weekly rule, stale claims, lost batches and confirmations
testsend    send_test: one copy of each variant to a staff address
welcome     welcome: the latest edition for a reader who has just confirmed
handoff     Jobs: how the engine hands a job to whoever runs it, after commit
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
from newsletter.dispatch.sending import BatchReport, Sender, send_batch
from newsletter.dispatch.states import move
from newsletter.dispatch.testsend import send_test
from newsletter.dispatch.welcome import welcome

__all__ = [
    "BatchReport",
    "LateConfirmation",
    "Progress",
    "SendStart",
    "Sender",
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
