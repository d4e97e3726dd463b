"""An injected clock for end-to-end tests: the triggers and the HTTP API read it instead of
the wall clock, so hours of schedule pass in no wall time (nothing asserts timings)."""

from __future__ import annotations

from datetime import datetime

import pytest


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment


def install_clock(monkeypatch: pytest.MonkeyPatch, start: datetime) -> Clock:
    from shared.entrypoints import http_api, triggers

    fake = Clock(start)
    monkeypatch.setattr(triggers, "_now", fake)
    monkeypatch.setattr(http_api, "_now", fake)
    return fake
