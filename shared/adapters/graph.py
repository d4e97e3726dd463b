"""Microsoft Graph over the msgraph-sdk request adapter, reading JSON ourselves.

Why not the typed client: its first typed call loads ~1,200 model modules (≈2 s, +40 MB,
DESIGN §7) — paid on every cold start. We keep the SDK's authentication provider, its
middleware pipeline (retry with Retry-After, redirects, telemetry headers) and its request
adapter, and hand our pure domain the JSON it was written against.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials_async import AsyncTokenCredential

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAX_BATCH = 20  # Graph JSON batching limit


class GraphError(Exception):
    """A Graph call failed. ``status`` 0 means no HTTP answer (connection or token error)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        request_id: str | None = None,
        path: str = "",
    ) -> None:
        super().__init__(f"{status} {code}: {message} ({path})")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id
        self.path = path

    @property
    def transient(self) -> bool:
        return self.status in (0, 408, 429, 500, 502, 503, 504)

    @property
    def consent_missing(self) -> bool:
        """The tenant did not consent (or revoked consent) to our app."""
        return self.status in (401, 403) or self.code in ("consent_missing", "invalid_client")


@dataclass(frozen=True)
class GraphResponse:
    status: int
    headers: Mapping[str, str]
    body: Any

    def raise_for_status(self, path: str) -> None:
        if self.status < 400:
            return
        error = self.body.get("error", {}) if isinstance(self.body, dict) else {}
        inner = error.get("innerError") or error.get("innererror") or {}
        retry_after = self.headers.get("retry-after")
        raise GraphError(
            self.status,
            str(error.get("code") or f"HTTP{self.status}"),
            str(error.get("message") or "no error message"),
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            request_id=inner.get("request-id") if isinstance(inner, dict) else None,
            path=path,
        )


@dataclass(frozen=True)
class BatchItem:
    id: str
    method: str
    url: str  # relative to the version root, e.g. "/policies/crossTenantAccessPolicy/default"
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()


class _RawResponseHandler:
    """Hands back status, headers and body so Graph errors are ours to interpret."""

    async def handle_response_async(self, response: httpx.Response, error_map: Any) -> Any:
        content = await response.aread() if not response.is_stream_consumed else response.content
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except ValueError:
                body = content.decode("utf-8", "replace")
        return GraphResponse(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
        )


class GraphClient:
    """One tenant's Graph, as one app identity."""

    def __init__(self, request_adapter: Any, base_url: str, tenant_id: str) -> None:
        self._adapter = request_adapter
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        url = path if path.startswith("https://") else f"{self.base_url}/{path.lstrip('/')}"
        if params:
            # Graph wants %20 for spaces and literal $ in system query options.
            url += "?" + urlencode(params, quote_via=quote, safe="$'(),/:=@")
        return url

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        no_retry: bool = False,
    ) -> GraphResponse:
        """``no_retry``: the SDK's retry handler must not replay this request — for a POST
        whose side effect cannot be repeated (it retries 429/503/504, POST included)."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption

        info = RequestInformation()
        info.http_method = Method[method.upper()]
        info.url = self.url(path, params)
        info.headers.try_add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.try_add(name, value)
        if body is not None:
            info.headers.try_add("Content-Type", "application/json")
            info.content = json.dumps(body).encode()
        info.add_request_options([ResponseHandlerOption(_RawResponseHandler())])
        if no_retry:
            info.add_request_options([RetryHandlerOption(max_retries=0, should_retry=False)])
        try:
            response: GraphResponse = await self._adapter.send_primitive_async(info, "bytes", {})
        except GraphError:
            raise
        except Exception as exc:  # connection reset, timeout, token acquisition failure
            raise _as_graph_error(exc, path) from exc
        return response

    async def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        response = await self.request("GET", path, params=params, headers=headers)
        response.raise_for_status(path)
        return response.body

    async def post_json(self, path: str, body: Any, *, no_retry: bool = False) -> Any:
        response = await self.request("POST", path, body=body, no_retry=no_retry)
        response.raise_for_status(path)
        return response.body

    async def get_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int = 1000,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page's ``value`` list, following ``@odata.nextLink``."""
        next_path: str | None = path
        next_params = params
        for _ in range(max_pages):
            if next_path is None:
                return
            page = await self.get_json(next_path, next_params, headers)
            yield list(page.get("value", []))
            next_path = page.get("@odata.nextLink")
            next_params = None
        log.warning("stopped paging %s after %d pages", path, max_pages)

    async def batch(self, items: list[BatchItem]) -> dict[str, GraphResponse]:
        """POST ``$batch`` ourselves (msgraph-core's batch helper loses JSON bodies)."""
        if not 0 < len(items) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_BATCH} requests, got {len(items)}")
        requests = []
        for item in items:
            entry: dict[str, Any] = {"id": item.id, "method": item.method, "url": item.url}
            if item.body is not None:
                entry["body"] = item.body
                entry["headers"] = {"Content-Type": "application/json", **item.headers}
            elif item.headers:
                entry["headers"] = dict(item.headers)
            if item.depends_on:
                entry["dependsOn"] = list(item.depends_on)
            requests.append(entry)
        body = await self.post_json("$batch", {"requests": requests})
        results: dict[str, GraphResponse] = {}
        for item in body.get("responses", []):
            results[str(item.get("id"))] = GraphResponse(
                status=int(item.get("status", 0)),
                headers={k.lower(): str(v) for k, v in (item.get("headers") or {}).items()},
                body=item.get("body"),
            )
        return results


def _as_graph_error(exc: Exception, path: str) -> GraphError:
    name = type(exc).__name__
    message = str(exc).splitlines()[0] if str(exc) else name
    if name == "ClientAuthenticationError":
        # Token request refused: for a client tenant this is "app not consented there".
        return GraphError(401, "consent_missing", message, path=path)
    return GraphError(0, name, message, path=path)


def build_http_client(ca_file: str | None, max_connections: int = 200) -> httpx.AsyncClient:
    """One pooled httpx client with the SDK's default middleware, shared by every tenant."""
    import ssl

    import httpx
    from msgraph_core import GraphClientFactory

    verify: ssl.SSLContext | bool = True
    if ca_file:
        verify = ssl.create_default_context(cafile=ca_file)
    client = httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
    )
    return GraphClientFactory.create_with_default_middleware(client=client)


def build_request_adapter(
    credential: AsyncTokenCredential,
    base_url: str,
    http_client: httpx.AsyncClient,
) -> Any:
    """The SDK's request adapter (auth provider + middleware client) pointed at ``base_url``."""
    from msgraph_core import BaseGraphRequestAdapter
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    host = urlsplit(base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
    adapter = BaseGraphRequestAdapter(auth, http_client=http_client)
    # Set explicitly: a base URL inherited from httpx gains a trailing slash (DESIGN §7).
    adapter.base_url = base_url.rstrip("/")
    return adapter
