"""Fault injection, throttles, latency and the request log of the Graph simulator (a TEST DOUBLE).

* A **fault** matches requests by a regex searched in ``path?query`` (plus optional method
  and tenant) and injects latency, an HTTP status (e.g. 429 + Retry-After, 500, 503) or a
  dropped connection, either with a ``probability`` (drawn from the simulator's seeded RNG,
  so runs are reproducible) or for the first ``count`` matching requests.
* A **throttle** allows ``limit`` requests per sliding ``per_seconds`` window per
  (tenant, app, rule) and answers 429 with the Retry-After that lets the next one through
  (e.g. the audit log's 5 per 10 s, the invitation write limit 3,000 per 150 s).
* A global **latency** knob (optionally limited to a path regex) for benchmarks.
* Every request (except the control API) is logged and counted.
"""

from __future__ import annotations

import math
import random
import re
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

_GUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_FUNCTION_ARGS_RE = re.compile(r"\(([^)]*)\)")


def route_of(path: str) -> str:
    """Group paths for counters: GUIDs → {id}, function arguments → (…)."""
    return _FUNCTION_ARGS_RE.sub("(…)", _GUID_RE.sub("{id}", path.split("?", 1)[0]))


@dataclass
class FaultRule:
    id: str
    pattern: re.Pattern[str]
    method: str | None = None
    tenant_id: str | None = None
    status: int | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    drop: bool = False
    probability: float | None = None
    remaining: int | None = None  # count: fire for the first N matching requests
    body: Any = None
    content_type: str | None = None  # with a text body: sent raw (an HTML gateway page)
    fired: int = 0
    # True: the request reaches its handler (the service acts), then the fault is the
    # answer — a 503/504 or a dropped connection *after* Graph did the work.
    after: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path_regex": self.pattern.pattern,
            "method": self.method,
            "tenant_id": self.tenant_id,
            "status": self.status,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "drop": self.drop,
            "probability": self.probability,
            "remaining": self.remaining,
            "fired": self.fired,
            "after": self.after,
        }


@dataclass
class ThrottleRule:
    id: str
    pattern: re.Pattern[str]
    limit: int
    per_seconds: float
    method: str | None = None
    tenant_id: str | None = None
    windows: dict[tuple[str | None, str | None], deque[float]] = field(default_factory=dict)
    throttled: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path_regex": self.pattern.pattern,
            "limit": self.limit,
            "per_seconds": self.per_seconds,
            "method": self.method,
            "tenant_id": self.tenant_id,
            "throttled": self.throttled,
        }


@dataclass
class FaultDecision:
    latency_ms: float = 0.0
    rule: FaultRule | None = None  # the rule that answers instead of the handler, if any


# Graph's identity-and-access-reports limit (auditLogRoot: directoryAudits and signIns
# together): 5 requests per 10 s per app per tenant. On by default, as in Graph.
REPORTS_THROTTLE = {
    "id": "graph-reports-limit",
    "path_regex": r"^/v1\.0/auditLogs/",
    "limit": 5,
    "per_seconds": 10,
}


class Traffic:
    """Faults, throttles, latency and observations; one per simulator process."""

    def __init__(self, seed: int = 1, log_limit: int = 100_000) -> None:
        self.rng = random.Random(seed)
        self.faults: list[FaultRule] = []
        self.throttles: list[ThrottleRule] = []
        self.latency_ms: float = 0.0
        self.latency_pattern: re.Pattern[str] | None = None
        self.log: deque[dict[str, Any]] = deque(maxlen=log_limit)
        self.counters: Counter[tuple[str, str, str, int]] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.injected = 0
        self.throttled = 0
        self.dropped = 0
        self.sequence = 0
        self.add_throttle(REPORTS_THROTTLE)

    # ------------------------------------------------------------------ configuration
    def set_seed(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def add_fault(self, spec: dict[str, Any]) -> FaultRule:
        probability = spec.get("probability")
        count = spec.get("count")
        if probability is not None and not 0.0 <= float(probability) <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        status = spec.get("status")
        drop = bool(spec.get("drop", False))
        latency = float(spec.get("latency_ms") or 0)
        if status is None and not drop and latency <= 0:
            raise ValueError("a fault needs status, drop or latency_ms")
        rule = FaultRule(
            id=str(spec.get("id") or uuid.uuid4()),
            pattern=re.compile(str(spec.get("path_regex", ".*"))),
            method=(str(spec["method"]).upper() if spec.get("method") else None),
            tenant_id=(str(spec["tenant_id"]).lower() if spec.get("tenant_id") else None),
            status=int(status) if status is not None else None,
            retry_after=float(spec["retry_after"]) if spec.get("retry_after") is not None else None,
            latency_ms=latency,
            drop=drop,
            probability=float(probability) if probability is not None else None,
            remaining=int(count) if count is not None else None,
            body=spec.get("body"),
            after=bool(spec.get("after", False)),
            content_type=(str(spec["content_type"]) if spec.get("content_type") else None),
        )
        self.faults.append(rule)
        return rule

    def add_throttle(self, spec: dict[str, Any]) -> ThrottleRule:
        limit = int(spec["limit"])
        per_seconds = float(spec["per_seconds"])
        if limit < 1 or per_seconds <= 0:
            raise ValueError("limit must be ≥ 1 and per_seconds > 0")
        rule = ThrottleRule(
            id=str(spec.get("id") or uuid.uuid4()),
            pattern=re.compile(str(spec.get("path_regex", ".*"))),
            limit=limit,
            per_seconds=per_seconds,
            method=(str(spec["method"]).upper() if spec.get("method") else None),
            tenant_id=(str(spec["tenant_id"]).lower() if spec.get("tenant_id") else None),
        )
        self.throttles.append(rule)
        return rule

    def set_latency(self, ms: float, path_regex: str | None = None) -> None:
        self.latency_ms = max(0.0, float(ms))
        self.latency_pattern = re.compile(path_regex) if path_regex else None

    # ------------------------------------------------------------------ per request
    def decide_faults(
        self, method: str, target: str, tenant_id: str | None, allow_drop: bool = True
    ) -> FaultDecision:
        """Latency to add and the rule (status/drop) that fires, for one request.

        ``allow_drop=False`` (``$batch`` items) skips drop rules: an item has no socket.
        """
        decision = FaultDecision()
        if self.latency_ms and (
            self.latency_pattern is None or self.latency_pattern.search(target)
        ):
            decision.latency_ms += self.latency_ms
        for rule in self.faults:
            if rule.method and rule.method != method:
                continue
            if rule.drop and not allow_drop:
                continue
            if rule.tenant_id and rule.tenant_id != (tenant_id or ""):
                continue
            if not rule.pattern.search(target):
                continue
            if rule.remaining is not None and rule.remaining <= 0:
                continue
            if rule.probability is not None and self.rng.random() >= rule.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
            rule.fired += 1
            decision.latency_ms += rule.latency_ms
            if rule.status is not None or rule.drop:
                decision.rule = rule
                self.injected += 1
                if rule.drop:
                    self.dropped += 1
                break
        return decision

    def check_throttles(
        self, method: str, target: str, tenant_id: str | None, app_id: str | None
    ) -> int | None:
        """Retry-After seconds when a throttle refuses this request, else None (and count it)."""
        now = time.monotonic()
        for rule in self.throttles:
            if rule.method and rule.method != method:
                continue
            if rule.tenant_id and rule.tenant_id != (tenant_id or ""):
                continue
            if not rule.pattern.search(target):
                continue
            window = rule.windows.setdefault((tenant_id, app_id), deque())
            while window and window[0] <= now - rule.per_seconds:
                window.popleft()
            if len(window) >= rule.limit:
                rule.throttled += 1
                self.throttled += 1
                return max(1, math.ceil(window[0] + rule.per_seconds - now))
            window.append(now)
        return None

    def record(
        self,
        *,
        method: str,
        path: str,
        query: str,
        tenant_id: str | None,
        app_id: str | None,
        status: int,
        duration_ms: float,
        batch_id: str | None = None,
        note: str | None = None,
    ) -> None:
        self.sequence += 1
        entry = {
            "seq": self.sequence,
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "tenantId": tenant_id,
            "appId": app_id,
            "status": status,
            "durationMs": round(duration_ms, 3),
        }
        if batch_id is not None:
            entry["batchItem"] = batch_id
        if note:
            entry["note"] = note
        self.log.append(entry)
        self.counters[(method, route_of(path), tenant_id or "", status)] += 1

    def reset_counters(self) -> None:
        self.log.clear()
        self.counters.clear()
        self.max_in_flight = self.in_flight
        self.injected = self.throttled = self.dropped = 0

    def stats(self) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        by_route: Counter[str] = Counter()
        by_tenant: Counter[str] = Counter()
        for (method, route, tenant, status), n in self.counters.items():
            by_status[str(status)] += n
            by_route[f"{method} {route}"] += n
            if tenant:
                by_tenant[tenant] += n
        return {
            "requests": sum(self.counters.values()),
            "byStatus": dict(by_status),
            "byRoute": dict(by_route),
            "byTenant": dict(by_tenant),
            "inFlight": self.in_flight,
            "maxInFlight": self.max_in_flight,
            "faultsInjected": self.injected,
            "throttled": self.throttled,
            "dropped": self.dropped,
            "latencyMs": self.latency_ms,
            "faults": [f.describe() for f in self.faults],
            "throttles": [t.describe() for t in self.throttles],
        }
