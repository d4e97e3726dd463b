"""A local stand-in for App Service Authentication ("Easy Auth") in front of the runner.

A TEST DOUBLE, like ``sim/``: it reproduces only the documented behaviour xtap-watch and its
doctor rely on (rows in sim/FIDELITY.md, "App Service / Azure Functions platform"):

* external requests cannot set ``X-MS-CLIENT-PRINCIPAL*`` / ``X-MS-TOKEN-*`` headers: they are
  stripped before the app sees the request;
* with ``unauthenticatedClientAction: Return401`` a request to a protected path without a
  valid token is answered 401 by the platform and never reaches the function;
* a valid bearer token (``aud`` in allowedAudiences, issued by the vendor tenant, its client
  in allowedApplications when that list is set) reaches the function with the token's claims
  in ``X-MS-CLIENT-PRINCIPAL``;
* excluded paths (``/api/v1/health``) pass without a token. Whether the platform attaches a
  caller's principal there is undocumented; this double does not (the fail-safe choice),
  which is why the doctor also has the protected ``/api/v1/doctor`` route.

Tokens are the simulator's unsigned JWTs; signatures are not checked. ``enabled=False`` is
the misconfiguration the doctor must catch: every request passes through untouched.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.domain.principal import encode_client_principal

STRIPPED_PREFIXES = ("x-ms-client-principal", "x-ms-token-")
PLATFORM_401_BODY = b"You do not have permission to view this directory or page."


@dataclass
class EasyAuthConfig:
    tenant_id: str
    allowed_audiences: tuple[str, ...]
    allowed_applications: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ("/api/v1/health",)
    enabled: bool = True


def _claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def principal_header(claims: dict[str, Any]) -> str:
    """X-MS-CLIENT-PRINCIPAL as App Service builds it: base64 JSON of the token's claims."""
    listed: list[dict[str, str]] = []
    for key, value in claims.items():
        for item in value if isinstance(value, list) else [value]:
            listed.append({"typ": key, "val": str(item)})
    body = {"auth_typ": "aad", "claims": listed, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(body).encode()).decode()


def _is_excluded(path: str, excluded: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in excluded)


@dataclass
class EasyAuthFront:
    """Serves the runner's HTTP triggers behind the double, on its own thread and loop."""

    config: EasyAuthConfig
    port: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _runner: Any = None
    _web: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def decide(self, path: str, headers: dict[str, str]) -> tuple[int | None, dict[str, str]]:
        """(401, {}) to refuse, or (None, headers the function receives)."""
        if not self.config.enabled:
            return None, headers
        forwarded = {
            k: v for k, v in headers.items() if not k.lower().startswith(STRIPPED_PREFIXES)
        }
        if _is_excluded(path, self.config.excluded_paths):
            return None, forwarded
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not authorization.lower().startswith("bearer "):
            return 401, {}
        claims = _claims(authorization[7:].strip())
        if claims is None or str(claims.get("aud")) not in self.config.allowed_audiences:
            return 401, {}
        if str(claims.get("tid", "")).lower() != self.config.tenant_id.lower():
            return 401, {}
        client = str(claims.get("azp") or claims.get("appid") or "")
        if self.config.allowed_applications and client not in self.config.allowed_applications:
            return 403, {}
        forwarded["X-MS-CLIENT-PRINCIPAL"] = principal_header(claims)
        forwarded["X-MS-CLIENT-PRINCIPAL-IDP"] = "aad"
        return None, forwarded

    async def _start(self) -> int:
        from devtools.runner import LocalRunner

        self._runner = LocalRunner()
        self._web, port = await serve_routes(self._runner, self._admit, self.port)
        return port

    def _admit(self, path: str, headers: dict[str, str]) -> tuple[int | None, dict[str, str]]:
        return self.decide(path, headers)

    async def _stop(self) -> None:
        import shared.bootstrap as bootstrap

        await self._web.cleanup()
        await self._runner.close()
        # The functions built the process-wide App on this loop on first use; close it here.
        if bootstrap._app is not None and bootstrap._app_loop is self._loop:
            await bootstrap._app.close()
            bootstrap.set_app(None)

    def __enter__(self) -> EasyAuthFront:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()


# (refusal status or None, the headers the function receives) for a request to ``path``.
Admission = Callable[[str, dict[str, str]], tuple[int | None, dict[str, str]]]


async def serve_routes(runner: Any, admit: Admission, port: int = 0) -> tuple[Any, int]:
    """Serve ``runner``'s HTTP routes on 127.0.0.1 behind ``admit``; (site runner, port)."""

    def front(path: str, headers: dict[str, str], bound: int) -> tuple[Any, dict[str, str]]:
        refused, headers = admit(path, headers)
        if refused is None:
            return None, headers
        challenge = {"WWW-Authenticate": f'Bearer realm="127.0.0.1:{bound}"'}
        return (refused, challenge, PLATFORM_401_BODY), headers

    site_runner, bound = await runner.serve_http("127.0.0.1", port, admit=front)
    return site_runner, int(bound)


def demo_operator(tenant_id: str, roles: tuple[str, ...]) -> str:
    """The principal of the demo's one local operator (a browser cannot send the header)."""
    return encode_client_principal(
        name="demo.operator@osttra.com",
        object_id="9e8d7c6b-5a49-4382-9170-1f2e3d4c5b6a",
        roles=roles,
        tenant_id=tenant_id,
    )


async def serve_signed_in(runner: Any, principal: str, port: int = 0) -> tuple[Any, int]:
    """Serve ``runner``'s routes as if App Service had signed ``principal`` in: any
    principal or token header the caller sends is stripped and this one is added."""

    def admit(path: str, headers: dict[str, str]) -> tuple[int | None, dict[str, str]]:
        kept = {k: v for k, v in headers.items() if not k.lower().startswith(STRIPPED_PREFIXES)}
        return None, kept | {"X-MS-CLIENT-PRINCIPAL": principal}

    return await serve_routes(runner, admit, port)
