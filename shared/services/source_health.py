"""Use case: record how a log source did this run, and alert the admins when it fails.

One stored state per source (the cursors table, key ``source-<kind>``): one alert per
failure episode, a reminder every ``XTAP_REMINDER_HOURS`` while it lasts, one resolved
message when it clears (:mod:`shared.domain.source_health`). The alert is enqueued before
the state is written, so a crash in between repeats it under the same key (the outbox
de-duplicates) but never loses it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.adapters.repositories import cursor_store
from shared.adapters.signins import EvidenceRead
from shared.adapters.storage import EntityConflict
from shared.config import QUEUE_ALERTS
from shared.domain.messages import AlertRecord
from shared.domain.source_health import (
    SourceKind,
    SourceProblem,
    SourceState,
    next_source_state,
    source_alert,
)

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)


def _key(source: SourceKind) -> str:
    return f"source-{source.value}"


async def report_source(
    app: App, source: SourceKind, problem: SourceProblem | None, now: datetime
) -> AlertRecord | None:
    """Record this run's outcome of ``source``; enqueue and return the alert it calls for."""
    store = cursor_store(app.tables)
    raw, etag = await store.get(_key(source))
    previous = SourceState.from_dict(raw)
    state, transition = next_source_state(
        previous, problem, now, timedelta(hours=app.settings.reminder_hours)
    )
    alert = None
    if transition is not None:
        alert = source_alert(
            transition,
            state,
            problem,
            app.settings.vendor_name,
            now,
            source=source,
            recovered_cause=previous.cause if previous else None,
        )
        await app.queues.send(QUEUE_ALERTS, alert)
        log.warning("%s: %s (%s)", source.value, transition.value, alert.dedup_key)
    if state != previous:
        try:
            await store.put(_key(source), state.to_dict(), etag)
        except EntityConflict:
            # Another run recorded the same source meanwhile; its state stands, and the
            # alert (if any) was keyed by episode, so a duplicate is dropped at delivery.
            log.info("%s state written concurrently; keeping the other run's", source.value)
    return alert


async def read_signin_evidence(app: App, now: datetime) -> EvidenceRead:
    """The sweep's sign-in evidence: never raises, whatever the source does.

    A failure gives empty counts and the reason (each posture record shows it) and the
    admins one alert per episode; the sweep goes on either way.
    """
    try:
        read: EvidenceRead = await app.signin_source().read(now, app.settings.signin_window_hours)
    except Exception as exc:  # evidence is a signal: nothing here may stop a sweep
        log.exception("sign-in evidence source failed unexpectedly")
        read = EvidenceRead(
            {},
            SourceProblem(
                SourceKind.SIGNIN_EVIDENCE,
                "unexpected_error",
                f"the sign-in evidence source failed ({type(exc).__name__})",
                "Look for the exception in Application Insights (traces of the sweep timer) "
                "and report it; the sweep goes on without evidence meanwhile.",
                f"{type(exc).__name__}: {exc}"[:500],
                persistent=False,
            ),
        )
    try:
        await report_source(app, SourceKind.SIGNIN_EVIDENCE, read.problem, now)
    except Exception:  # the sweep matters more than the source's health record
        log.exception("sign-in evidence health not recorded")
    return read
