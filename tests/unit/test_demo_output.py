"""The demo prints its alerts in a fixed order (issue #14.7): the outbox's order depends on
worker timing, the printout must not."""

from __future__ import annotations

import itertools

from devtools.local_stack import alert_order

ALERTS = [
    {"severity": "medium", "kind": "vendor_posture", "title": "OSTTRA's default settings"},
    {"severity": "high", "kind": "vendor_setting_changed", "title": "Default changed"},
    {"severity": "high", "kind": "client_drifted", "title": "Contoso Markets: blocked"},
    {"severity": "high", "kind": "client_drifted", "title": "Fabrikam Clearing: blocked"},
    {"severity": "info", "kind": "client_recovered", "title": "Northwind Securities"},
]


def test_any_arrival_order_prints_the_same_most_severe_first():
    expected = [ALERTS[i] for i in (2, 3, 1, 0, 4)]
    for arrival in itertools.permutations(ALERTS):
        assert sorted(arrival, key=alert_order) == expected
