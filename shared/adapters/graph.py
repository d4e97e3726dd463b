"""Microsoft Graph over the msgraph-sdk request adapter, reading JSON ourselves.

Why not the typed client: its first typed call loads ~1,200 model modules (≈2 s, +40 MB,
DESIGN §7) — paid on every cold start. We keep the SDK's authentication provider, its
middleware pipeline (retry with Retry-After, redirects, telemetry headers) and its request
adapter, and hand our pure domain the JSON it was written against.

Every successful answer is shape-checked here (:func:`check_shape`): a 200 whose body is
an HTML page, a list, text, or an object without the keys its resource always has (a user
without ``id``) is a :class:`GraphError` (``UnexpectedResponseShape``, transient), never a
Python error further down and never a diagnosis built on garbage.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode, urlsplit

import httpx
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.response_handler import ResponseHandler
from kiota_abstractions.serialization import ParsableFactory
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph_core import BaseGraphRequestAdapter, GraphClientFactory
from msgraph_core.authentication import AzureIdentityAuthenticationProvider

from shared.adapters.gated_transport import GatedTransport
from shared.domain.strict_json import StrictJsonError, loads_strict

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAX_BATCH = 20  # Graph JSON batching limit
BAD_SHAPE: Final = "UnexpectedResponseShape"


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


@dataclass(frozen=True)
class AmbiguousJson:
    """A JSON answer that does not mean one thing (e.g. one key twice): never guessed at."""

    problem: str


# Policies decide verdicts: their answers (alone or inside a $batch) are parsed strictly,
# so a duplicated property is refused instead of the last value silently winning (issue
# 13.5). Other answers keep json.loads, ~6x faster on large pages.
_STRICT_PATHS = re.compile(r"/policies/|/\$batch$")


def _decode(content: bytes, url_path: str) -> Any:
    if _STRICT_PATHS.search(url_path):
        return loads_strict(content.decode("utf-8"))
    return json.loads(content)


class _RawResponseHandler(ResponseHandler):
    """Hands back status, headers and body so Graph errors are ours to interpret."""

    # kiota types ``response`` as a free method TypeVar; kiota-http always passes its
    # httpx.Response, so the narrower argument is what really arrives.
    async def handle_response_async(  # type: ignore[override]
        self, response: httpx.Response, error_map: dict[str, ParsableFactory] | None
    ) -> GraphResponse:
        content = await response.aread() if not response.is_stream_consumed else response.content
        body: Any = None
        if content:
            try:
                body = _decode(content, response.request.url.path)
            except StrictJsonError as exc:
                body = AmbiguousJson(str(exc))
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
        if isinstance(response.body, AmbiguousJson):
            raise shape_error(response.status, f"ambiguous JSON: {response.body.problem}", path)
        problem = check_shape(method, self.route(path), response.status, response.body)
        if problem:
            raise shape_error(response.status, problem, path)
        return response

    def route(self, path: str) -> str:
        """The resource path of ``path`` (a relative path or a nextLink), without query."""
        if path.startswith("https://") or path.startswith("http://"):
            path = urlsplit(path).path
            base_path = urlsplit(self.base_url).path
            if base_path and path.startswith(base_path):
                path = path[len(base_path) :]
        path = path.split("?", 1)[0]
        return "/" + path.lstrip("/")

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
        methods = {item.id: (item.method, self.route(item.url)) for item in items}
        results: dict[str, GraphResponse] = {}
        for item in body["responses"]:
            item_id = str(item.get("id"))
            status = item.get("status")
            response = GraphResponse(
                status=status if isinstance(status, int) else 0,
                headers={k.lower(): str(v) for k, v in (item.get("headers") or {}).items()},
                body=item.get("body"),
            )
            method, route = methods.get(item_id, ("GET", ""))
            problem = (
                "the item has no HTTP status"
                if not isinstance(status, int)
                else check_shape(method, route, response.status, response.body)
            )
            if problem:
                # Kept as a failed item (transient), so callers re-read it on its own.
                response = GraphResponse(
                    status=502,
                    headers=response.headers,
                    body={"error": {"code": BAD_SHAPE, "message": problem}},
                )
            results[item_id] = response
        return results


# Keys a resource always carries (Graph v1.0 reference): an answer without them is not that
# resource. ``entity``: the body itself; ``items``: each element of ``value``.
_REQUIRED: Final[tuple[tuple[frozenset[str], re.Pattern[str], str, tuple[str, ...]], ...]] = (
    (frozenset({"GET", "PATCH"}), re.compile(r"^/users/[^/]+$"), "entity", ("id",)),
    (frozenset({"GET"}), re.compile(r"^/(users|groups)$"), "items", ("id",)),
    (frozenset({"GET"}), re.compile(r"^/groups/[^/]+$"), "entity", ("id",)),
    (frozenset({"POST"}), re.compile(r"^/invitations$"), "entity", ("id",)),
    (
        frozenset({"GET"}),
        re.compile(r"^/auditLogs/(directoryAudits|signIns)$"),
        "items",
        ("id",),
    ),
    (
        frozenset({"GET"}),
        re.compile(r"^/policies/crossTenantAccessPolicy/partners$"),
        "items",
        ("tenantId",),
    ),
    (
        frozenset({"GET"}),
        re.compile(r"^/identityGovernance/accessReviews/definitions$"),
        "items",
        ("id",),
    ),
    (
        frozenset({"POST"}),
        re.compile(r"^/identityGovernance/accessReviews/definitions$"),
        "entity",
        ("id",),
    ),
    (frozenset({"POST"}), re.compile(r"^/\$batch$"), "entity", ("responses",)),
)


def _describe(body: Any) -> str:
    if isinstance(body, str):
        head = body.lstrip()[:15].lower()
        return "an HTML page" if head.startswith(("<!doctype", "<html")) else "text"
    return "nothing" if body is None else f"a JSON {type(body).__name__}"


def check_shape(method: str, route: str, status: int, body: Any) -> str | None:
    """What is wrong with a successful Graph answer, or ``None`` when it has its shape."""
    if not 200 <= status < 300:
        return None  # errors are read by raise_for_status, whatever their body
    if status in (202, 204) and body in (None, ""):
        return None  # accepted / no content (sendMail, DELETE)
    if not isinstance(body, dict):
        return f"Graph answered {status} with {_describe(body)} where a JSON object was expected"
    value = body.get("value")
    if "value" in body and not (
        isinstance(value, list) and all(isinstance(v, dict) for v in value)
    ):
        return f"Graph answered {status} with a 'value' that is not a list of objects"
    upper = method.upper()
    for methods, pattern, where, keys in _REQUIRED:
        if upper not in methods or not pattern.match(route):
            continue
        if where == "entity":
            missing = [k for k in keys if body.get(k) in (None, "")]
            if missing:
                return f"Graph answered {status} for {route} without {', '.join(missing)}"
            if route == "/$batch" and not (
                isinstance(body["responses"], list)
                and all(isinstance(r, dict) for r in body["responses"])
            ):
                return "Graph answered a $batch without a list of responses"
        else:
            for item in value if isinstance(value, list) else ():
                missing = [k for k in keys if item.get(k) in (None, "")]
                if missing:
                    return f"Graph listed {route} items without {', '.join(missing)}"
    return None


def shape_error(status: int, problem: str, path: str) -> GraphError:
    """A bad shape is a bad gateway answer: transient (retried, then "unreachable")."""
    log.warning("unexpected Graph answer for %s: %s", path, problem)
    return GraphError(502, BAD_SHAPE, f"{problem} (HTTP {status})", path=path)


def _as_graph_error(exc: Exception, path: str) -> GraphError:
    name = type(exc).__name__
    message = str(exc).splitlines()[0] if str(exc) else name
    if name == "ClientAuthenticationError":
        # Token request refused: for a client tenant this is "app not consented there".
        return GraphError(401, "consent_missing", message, path=path)
    return GraphError(0, name, message, path=path)


def build_http_client(ca_file: str | None, max_connections: int = 200) -> httpx.AsyncClient:
    """One pooled httpx client with the SDK's default middleware, shared by every tenant."""
    verify: ssl.SSLContext | bool = True
    if ca_file:
        verify = ssl.create_default_context(cafile=ca_file)
    timeout = httpx.Timeout(30.0, connect=10.0)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
    connections = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    client = httpx.AsyncClient(
        transport=GatedTransport(connections, max_connections, wait_s=float(timeout.pool or 30.0)),
        timeout=timeout,
        # For the transports httpx mounts itself (a proxy from the environment).
        verify=verify,
        limits=limits,
    )
    return GraphClientFactory.create_with_default_middleware(client=client)


def build_request_adapter(
    credential: AsyncTokenCredential,
    base_url: str,
    http_client: httpx.AsyncClient,
) -> Any:
    """The SDK's request adapter (auth provider + middleware client) pointed at ``base_url``."""
    host = urlsplit(base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
    adapter = BaseGraphRequestAdapter(auth, http_client=http_client)
    # Set explicitly: a base URL inherited from httpx gains a trailing slash (DESIGN §7).
    adapter.base_url = base_url.rstrip("/")
    return adapter
