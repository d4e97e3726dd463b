"""Test helpers for the Graph simulator (a TEST DOUBLE): start it, drive its control API.

    with start_simulator("demo", tmp_path) as sim:
        cred = ClientSecretCredential(VENDOR_TENANT_ID, VENDOR_APP_ID, VENDOR_APP_SECRET,
                                      authority=sim.authority, disable_instance_discovery=True,
                                      connection_verify=sim.ca_file)
        sim.control.set_partner_policy(client_tid, vendor_tid, {...}, actor="admin@contoso.com")

The simulator runs in its own process (``python -m sim``) so tests exercise real HTTP/TLS.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 20.0


class SimulatorStartError(RuntimeError):
    """The simulator process did not print its JSON line in time (stderr attached)."""


class SimControl:
    """Small synchronous client of the simulator's control API (``/_sim/...``)."""

    def __init__(self, base_url: str, ca_file: str, timeout: float = 30.0) -> None:
        self._client = httpx.Client(base_url=base_url + "/_sim", verify=ca_file, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = self._client.request(method, path, json=body, params=params)
        if response.status_code >= 400:
            raise RuntimeError(
                f"simulator control {method} {path} → {response.status_code}: {response.text}"
            )
        return response.json()

    # -- tenants and directory data ------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def tenants(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tenants")["tenants"]

    def tenant(self, tenant_id: str) -> dict[str, Any]:
        """Summary + ``default``, ``partnerPolicies``, ``authorizationPolicy`` of one tenant."""
        return self._call("GET", f"/tenants/{tenant_id}")

    def add_tenant(self, tenant: dict[str, Any]) -> dict[str, Any]:
        """Add a tenant at run time (same format as a scenario's ``tenants[]`` item)."""
        return self._call("POST", "/tenants", tenant)

    def add_users(self, tenant_id: str, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", f"/tenants/{tenant_id}/users", {"users": users})["users"]

    def user(self, tenant_id: str, user_id_or_upn: str) -> dict[str, Any]:
        """The stored user (all properties, plus ``directoryRoles``)."""
        return self._call("GET", f"/tenants/{tenant_id}/users/{quote(user_id_or_upn, safe='@')}")

    def add_signins(self, tenant_id: str, sign_ins: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append sign-ins (partial records are completed; ``errorCode`` shorthand accepted)."""
        return self._call("POST", f"/tenants/{tenant_id}/signIns", {"signIns": sign_ins})["signIns"]

    def add_audit_events(
        self, tenant_id: str, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return self._call("POST", f"/tenants/{tenant_id}/directoryAudits", {"events": events})[
            "events"
        ]

    def set_consent(
        self, tenant_id: str, app_id: str, state: str, roles: list[str] | None = None
    ) -> dict[str, Any]:
        """``granted`` | ``revoked`` (token without roles → 403) | ``none`` (AADSTS700016)."""
        body: dict[str, Any] = {"state": state}
        if roles is not None:
            body["roles"] = roles
        return self._call("PUT", f"/tenants/{tenant_id}/consents/{app_id}", body)

    def set_tenant_flags(self, tenant_id: str, **flags: Any) -> dict[str, Any]:
        """e.g. ``accessReviewsLicensed=False``: POST accessReviews fails with the licence
        error."""
        return self._call("PATCH", f"/tenants/{tenant_id}/flags", flags)["flags"]

    def set_authorization_policy(self, tenant_id: str, **properties: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/tenants/{tenant_id}/authorizationPolicy", properties)

    # -- policy changes (each appends the matching directoryAudit event) ----------
    @staticmethod
    def _policy_body(
        policy: dict[str, Any] | None, actor: Any, value_style: str, at: Any, replace: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"valueStyle": value_style, "replace": replace}
        if policy is not None:
            body["policy"] = policy
        if actor is not None:
            body["actor"] = actor
        if at is not None:
            body["at"] = at
        return body

    def set_partner_policy(
        self,
        tenant_id: str,
        partner_tenant_id: str,
        policy_dict: dict[str, Any],
        *,
        actor: Any = None,
        value_style: str = "camel",
        at: Any = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """Add or update (top-level properties replaced, like Graph PATCH) a partner entry.

        Returns the audit event written ("Add a partner ..." or "Update a partner ...").
        ``actor``: a UPN, ``{"appId": ..., "displayName": ...}``, or a full initiatedBy.
        ``value_style``: ``camel`` or ``pascal`` keys inside oldValue/newValue.
        """
        body = self._policy_body(policy_dict, actor, value_style, at, replace)
        return self._call("PUT", f"/tenants/{tenant_id}/policy/partners/{partner_tenant_id}", body)[
            "event"
        ]

    def delete_partner_policy(
        self,
        tenant_id: str,
        partner_tenant_id: str,
        *,
        actor: Any = None,
        value_style: str = "camel",
        at: Any = None,
    ) -> dict[str, Any]:
        body = self._policy_body(None, actor, value_style, at, False)
        return self._call(
            "DELETE", f"/tenants/{tenant_id}/policy/partners/{partner_tenant_id}", body
        )["event"]

    def set_default_policy(
        self,
        tenant_id: str,
        policy_dict: dict[str, Any],
        *,
        actor: Any = None,
        value_style: str = "camel",
        at: Any = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        body = self._policy_body(policy_dict, actor, value_style, at, replace)
        return self._call("PUT", f"/tenants/{tenant_id}/policy/default", body)["event"]

    # -- faults, throttles, latency ------------------------------------------------
    def add_fault(
        self,
        path_regex: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        latency_ms: float | None = None,
        drop: bool = False,
        probability: float | None = None,
        count: int | None = None,
        method: str | None = None,
        tenant_id: str | None = None,
        body: Any = None,
        after: bool = False,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Inject a status (e.g. 429 + retry_after), latency or a dropped connection.

        ``body`` with ``content_type`` (e.g. ``"text/html"``) is sent as raw text: a
        gateway's HTML page instead of Graph JSON.

        ``path_regex`` is searched in ``path?query`` (e.g. ``"/auditLogs/directoryAudits"``).
        ``count``: only the first N matching requests; ``probability``: seeded random share.
        ``after``: the request is served first (Graph acts), then the fault is the answer.
        """
        spec: dict[str, Any] = {"path_regex": path_regex, "drop": drop, "after": after}
        for key, value in (
            ("status", status),
            ("retry_after", retry_after),
            ("latency_ms", latency_ms),
            ("probability", probability),
            ("count", count),
            ("method", method),
            ("tenant_id", tenant_id),
            ("body", body),
            ("content_type", content_type),
        ):
            if value is not None:
                spec[key] = value
        return self._call("POST", "/faults", spec)

    def clear_faults(self) -> int:
        return int(self._call("DELETE", "/faults")["removed"])

    def set_throttle(
        self,
        path_regex: str,
        limit: int,
        per_seconds: float,
        *,
        method: str | None = None,
        tenant_id: str | None = None,
    ) -> dict[str, Any]:
        """``limit`` requests per sliding ``per_seconds`` per (tenant, app);
        else 429 + Retry-After."""
        spec: dict[str, Any] = {
            "path_regex": path_regex,
            "limit": limit,
            "per_seconds": per_seconds,
        }
        if method:
            spec["method"] = method
        if tenant_id:
            spec["tenant_id"] = tenant_id
        return self._call("POST", "/throttles", spec)

    def clear_throttles(self) -> int:
        return int(self._call("DELETE", "/throttles")["removed"])

    def set_latency(self, ms: float, path_regex: str | None = None) -> None:
        """Global latency added to every (matching) request, e.g. 100 ms for the sweep benchmark."""
        self._call("PUT", "/latency", {"ms": ms, "path_regex": path_regex})

    def set_seed(self, seed: int) -> None:
        """Reseed the RNG used by probabilistic faults (reproducible chaos runs)."""
        self._call("PUT", "/seed", {"seed": seed})

    # -- observations --------------------------------------------------------------
    def requests(self, path_contains: str | None = None) -> list[dict[str, Any]]:
        params = {"path_contains": path_contains} if path_contains else None
        return self._call("GET", "/requests", params=params)["requests"]

    def invitations(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every POST /invitations the tenant received (with status and invitedUserId)."""
        return self._call("GET", f"/tenants/{tenant_id}/invitations")["invitations"]

    def mailbox(self) -> list[dict[str, Any]]:
        """Every accepted sendMail: ``{tenantId, sender, appId, message, receivedAt, ...}``."""
        return self._call("GET", "/mailbox")["messages"]

    def clear_mailbox(self) -> int:
        return int(self._call("DELETE", "/mailbox")["removed"])

    def webhook_messages(self, name: str) -> list[dict[str, Any]]:
        """Cards the flow behind ``/webhooks/teams/{name}`` really posted to the channel
        (``body`` is the posted JSON); a post whose flow run failed is not here."""
        return self._call("GET", f"/webhooks/{quote(name, safe='')}")["messages"]

    def webhook_rejections(self, name: str) -> list[dict[str, Any]]:
        """Requests the trigger itself refused (no run started)."""
        return self._call("GET", f"/webhooks/{quote(name, safe='')}")["rejected"]

    def flow_runs(self, name: str) -> list[dict[str, Any]]:
        """The flow's run history: ``{runId, status: Running|Succeeded|Failed, error?}``."""
        return self._call("GET", f"/webhooks/{quote(name, safe='')}")["runs"]

    def set_webhook_flow(self, name: str, kind: str, run_delay_ms: float | None = None
                         ) -> dict[str, Any]:
        """``accepting`` (202 before the run; the default) or ``confirming`` (200 after
        the post, 502 when it failed: the flow docs/teams-workflow.md describes)."""
        body: dict[str, Any] = {"kind": kind}
        if run_delay_ms is not None:
            body["runDelayMs"] = run_delay_ms
        return self._call("PUT", f"/webhooks/{quote(name, safe='')}/flow", body)

    def access_review_definitions(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/tenants/{tenant_id}/accessReviewDefinitions")["definitions"]

    def directory(self, tenant_id: str) -> dict[str, Any]:
        """Groups (with member IDs), service principal roles, B2B policy, cloud settings."""
        return self._call("GET", f"/tenants/{tenant_id}/directory")

    def set_directory(self, tenant_id: str, **properties: Any) -> dict[str, Any]:
        """``servicePrincipalDirectoryRoles={appId: [role]}``, ``b2bManagementPolicy=...``,
        ``allowedCloudEndpoints=[...]``, ``cloudInstanceName=...`` (see sim/README.md)."""
        return self._call("PATCH", f"/tenants/{tenant_id}/directory", properties)

    def reset_counters(self) -> None:
        self._call("POST", "/counters/reset")

    def stats(self) -> dict[str, Any]:
        """``requests``, ``byStatus``, ``byRoute``, ``byTenant``, ``maxInFlight``, faults, ..."""
        return self._call("GET", "/stats")


class SimulatorProcess:
    """A running ``python -m sim`` child process."""

    def __init__(
        self, process: subprocess.Popen[bytes], info: dict[str, Any], stderr_path: Path
    ) -> None:
        self.process = process
        self.base_url: str = info["base_url"]
        self.port: int = int(info["port"])
        self.ca_file: str = info["ca_file"]
        self.graph_url = self.base_url + "/v1.0"
        self.authority = self.base_url
        self.log_analytics_url = self.base_url + "/loganalytics"
        self.msi_endpoint = self.base_url + "/msi/token"
        self.stderr_path = stderr_path
        self.control = SimControl(self.base_url, self.ca_file)

    @property
    def pid(self) -> int:
        return self.process.pid

    def webhook_url(self, name: str) -> str:
        return self.base_url + "/webhooks/teams/" + name

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        self.control.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read_line(process: subprocess.Popen[bytes], deadline: float) -> bytes:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # the child closed stdout (exited)
            buffer += chunk
        elif process.poll() is not None:
            break
    return buffer


def start_simulator(
    scenario: dict[str, Any] | str | Path,
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    page_size: int | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> SimulatorProcess:
    """Spawn ``python -m sim`` and wait for its JSON line; raise with its stderr if it fails.

    ``scenario``: a scenario dict (written to ``workdir/scenario.json``), a path to one,
    ``"demo"`` or ``"generated:N"``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(scenario, dict):
        scenario_path = workdir / "scenario.json"
        scenario_path.write_text(json.dumps(scenario), encoding="utf-8")
        scenario_arg = str(scenario_path)
    else:
        scenario_arg = str(scenario)
    stderr_path = workdir / "simulator.stderr.log"
    command = [
        sys.executable,
        "-m",
        "sim",
        "--host",
        host,
        "--port",
        str(port),
        "--scenario",
        scenario_arg,
        "--workdir",
        str(workdir),
    ]
    if page_size is not None:
        command += ["--page-size", str(page_size)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    with stderr_path.open("wb") as stderr_file:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            env=env,
        )
    line = _read_line(process, time.monotonic() + timeout)
    try:
        info = json.loads(line.decode("utf-8").splitlines()[0]) if line.strip() else None
    except (ValueError, IndexError):
        info = None
    if not info:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        stderr = stderr_path.read_text(encoding="utf-8", errors="replace")
        raise SimulatorStartError(
            f"graph simulator did not start within {timeout:.0f} s"
            f" (exit code {process.returncode});"
            f" stdout: {line[:500]!r}\n--- stderr ---\n{stderr[-4000:]}"
        )
    return SimulatorProcess(process, info, stderr_path)
