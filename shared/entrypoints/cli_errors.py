"""Failures of ``xtap-watch`` commands as one line naming the cause and the fix.

A command that cannot reach storage, Microsoft Graph or the token endpoint, or whose
identity is refused, ends with exit status 1 (2 when the fix is a setting) and one line
on stderr — never a traceback (``--verbose`` adds it). The line names the thing that
failed by the setting that points at it, so the reader knows what to change.

The root cause is found by walking the exception chain: the adapters wrap transport and
token errors (``GraphError`` with status 0, ``TokenRequestError``), and the original is
kept as ``__cause__``.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.entrypoints.cli_common import EXIT_BAD_INPUT, EXIT_FAILED


@dataclass(frozen=True)
class Failure:
    message: str
    exit_code: int = EXIT_FAILED


@dataclass(frozen=True)
class Identity:
    """Who asked for a token, for messages: the setting names of its app and secret."""

    label: str  # "the vendor app", "the client reader app"
    app_setting: str
    secret_setting: str
    app_id: str | None = None
    tenant_id: str | None = None


def vendor_identity(settings: Any) -> Identity:
    return Identity(
        "the vendor app",
        "XTAP_VENDOR_CLIENT_ID",
        "XTAP_VENDOR_CLIENT_SECRET",
        settings.vendor_client_id,
        settings.vendor_tenant_id,
    )


def reader_identity(settings: Any, tenant_id: str | None = None) -> Identity:
    return Identity(
        "the client reader app",
        "XTAP_CLIENT_READER_APP_ID",
        "XTAP_CLIENT_READER_SECRET",
        settings.client_reader_app_id,
        tenant_id,
    )


# Microsoft Entra "authentication and authorization error codes" (AADSTS reference).
_AADSTS = re.compile(r"AADSTS(\d{4,8})")
CONSENT_CODES = frozenset({700016, 7000229})  # the tenant has not consented to the app


def aadsts_code(text: str) -> int | None:
    match = _AADSTS.search(text)
    return int(match.group(1)) if match else None


def token_failure(code: int | None, text: str, who: Identity) -> Failure:
    """One line for a token request the directory refused, by its AADSTS code."""
    app = f"{who.label} ({who.app_setting}={who.app_id})" if who.app_id else who.label
    if code == 7000215:
        return Failure(
            f"{app} was refused: wrong client secret (AADSTS7000215). Set {who.secret_setting}"
            " to the secret's Value (not its Secret ID) from Entra admin center > App"
            " registrations > the app > Certificates & secrets",
            EXIT_BAD_INPUT,
        )
    if code == 7000222:
        return Failure(
            f"{app} was refused: its client secret has expired (AADSTS7000222). Create a new"
            f" secret for the app and put its Value in {who.secret_setting}",
            EXIT_BAD_INPUT,
        )
    if code in CONSENT_CODES:
        where = f" tenant {who.tenant_id}" if who.tenant_id else " the tenant"
        return Failure(
            f"{app} does not exist in{where} (AADSTS{code}): check {who.app_setting}, and"
            " that the app is registered (or consented to) there",
            EXIT_BAD_INPUT,
        )
    if code == 90002:
        return Failure(
            f"tenant {who.tenant_id} does not exist (AADSTS90002): check"
            " XTAP_VENDOR_TENANT_ID (the vendor's Entra tenant ID)",
            EXIT_BAD_INPUT,
        )
    if code == 53003:
        return Failure(
            f"{app} was blocked by Conditional Access for workload identities (AADSTS53003):"
            " exclude the app (or allow this location) in the tenant's Conditional Access"
        )
    first = " ".join(text.split())[:300]
    shown = f"AADSTS{code}: " if code and f"AADSTS{code}" not in first else ""
    return Failure(f"{app} could not get a token: {shown}{first}")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


_HOST = re.compile(r"host ([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d+)")
_PEER = re.compile(r"\('([0-9a-fA-F.:]+)', (\d+)\)")


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def endpoints(settings: Any) -> dict[str, tuple[str, str]]:
    """host:port → (what it is, the setting that points there)."""
    out: dict[str, tuple[str, str]] = {}
    for url, what, setting in (
        (settings.graph_base_url, "Microsoft Graph", "XTAP_GRAPH_BASE_URL"),
        (settings.authority_host, "the Entra token endpoint", "XTAP_AUTHORITY_HOST"),
        (settings.log_analytics_endpoint, "Log Analytics", "XTAP_LOG_ANALYTICS_ENDPOINT"),
    ):
        out.setdefault(_host_port(url), (what, setting))
    return out


def _where(chain: list[BaseException]) -> str | None:
    for cause in chain:
        for pattern in (_HOST, _PEER):
            match = pattern.search(str(cause))
            if match:
                return f"{match.group(1)}:{match.group(2)}"
    return None


def _reason(chain: list[BaseException]) -> str:
    for cause in reversed(chain):  # the root says it best
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError):
            return "no answer (timed out)"
        text = str(cause)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return "unknown host name"
        if "name resolution" in text:
            return "name resolution failed"
    return " ".join(str(chain[-1]).split())[:160] or type(chain[-1]).__name__


_CONNECTION_ERRORS = (ConnectionError, TimeoutError, OSError)


def _is_connection_failure(chain: list[BaseException]) -> bool:
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    names = {type(c).__name__ for c in chain}
    kinds = (ServiceRequestError, ServiceResponseError, *_CONNECTION_ERRORS)
    transport = {"ConnectError", "ConnectTimeout", "ReadTimeout", "ClientConnectorError"}
    return any(isinstance(c, kinds) for c in chain) or bool(names & transport)


def _identity_named(text: str, settings: Any, who: Identity | None) -> Identity:
    if settings is not None:
        if settings.client_reader_app_id and settings.client_reader_app_id in text.lower():
            return reader_identity(settings, who.tenant_id if who else None)
        if settings.vendor_client_id and settings.vendor_client_id in text.lower():
            return vendor_identity(settings)
    if who is not None:
        return who
    if settings is not None:
        return vendor_identity(settings)
    return Identity("the app", "XTAP_VENDOR_CLIENT_ID", "XTAP_VENDOR_CLIENT_SECRET")


def describe(
    exc: BaseException, settings: Any | None, who: Identity | None = None
) -> Failure | None:
    """The one-line failure for ``exc``, or None when it is not one we can explain."""
    from azure.core.exceptions import ClientAuthenticationError

    chain = _chain(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            where = _where(chain)
            return Failure(
                f"the TLS certificate of {where or 'a service'} is not trusted "
                f"({getattr(cause, 'verify_message', None) or 'verify failed'}): for the local"
                " simulator set "
                "XTAP_TLS_CA_FILE to its CA file; for Microsoft's services unset it",
                EXIT_BAD_INPUT,
            )
    for cause in chain:
        description = getattr(getattr(cause, "failure", None), "description", None)
        text = str(description or (cause if isinstance(cause, ClientAuthenticationError) else ""))
        code = aadsts_code(text) if text else None
        if code is not None:
            tenant = getattr(cause, "tenant_id", None)
            identity = _identity_named(text, settings, who)
            if tenant and identity.tenant_id is None:
                identity = Identity(identity.label, identity.app_setting,
                                    identity.secret_setting, identity.app_id, tenant)
            return token_failure(code, text, identity)
    graph_refusal = next(
        (
            c
            for c in chain
            if type(c).__name__ == "GraphError" and getattr(c, "status", 0) in (401, 403)
        ),
        None,
    )
    if graph_refusal is not None:
        status = getattr(graph_refusal, "status", 0)
        graph_code = getattr(graph_refusal, "code", "")
        path = getattr(graph_refusal, "path", "")
        return Failure(
            f"Microsoft Graph refused {path or 'the request'} ({status} {graph_code}):"
            " the vendor app lacks a permission or its admin consent; the README table"
            " \"Graph permissions\" lists what each feature needs"
        )
    if not _is_connection_failure(chain):
        return None
    where = _where(chain)
    graph_error = next((c for c in chain if type(c).__name__ == "GraphError"), None)
    known = endpoints(settings) if settings is not None else {}
    if where is None and graph_error is not None and settings is not None:
        where = _host_port(settings.graph_base_url)
    if where is None:
        return None
    what, setting = known.get(where, (where, ""))
    shown = f"{what} ({where})" if what != where else where
    fix = f"check the network and proxy, or {setting}" if setting else "check the network"
    return Failure(f"cannot reach {shown}: {_reason(chain)}; {fix}")
