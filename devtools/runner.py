"""Local Functions runner: runs ``function_app.py`` without Azure Functions Core Tools.

It reproduces the host behaviour our code depends on:
* timers fire once on demand (``fire_timer``) or on their NCRONTAB schedule (``serve``);
  ``%SETTING%`` schedules are resolved from the environment like the host does;
* queue triggers drain Azurite with the host's semantics: base64 messages, ``batchSize``
  and ``newBatchThreshold`` concurrency, a failed message becomes visible again after
  ``visibilityTimeout``, and after ``maxDequeueCount`` attempts it moves to
  ``<queue>-poison`` (all read from host.json); a message that is not base64 moves to
  ``<queue>-poison`` unchanged at once, without invoking the function, as the Storage
  Queues extension 5.x does (azure-sdk-for-net PR #18326); a message still being processed
  halfway to its visibility timeout is made invisible for another whole timeout, as the
  host's queue listener does (Azure/azure-webjobs-sdk ``QueueListener``: received for 10
  minutes, renewed at half; here received for ``receive_visibility_s``, 60 s, so that a
  killed runner's messages come back within a minute);
* HTTP triggers are served on a loopback port under ``routePrefix`` (``/api``), with the
  App Service Authentication principal header passed through (tests inject it).

With Core Tools installed, ``func start`` runs the very same ``function_app.py``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("xtap.runner")


def _timespan_seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueSemantics:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 2.0

    @classmethod
    def from_host_json(cls, path: Path = ROOT / "host.json") -> QueueSemantics:
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        return cls(
            batch_size=int(queues.get("batchSize", 16)),
            new_batch_threshold=int(queues.get("newBatchThreshold", 8)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=_timespan_seconds(queues.get("visibilityTimeout"), 0.0),
            max_polling_interval=_timespan_seconds(queues.get("maxPollingInterval"), 2.0),
        )


@dataclass
class FunctionInfo:
    name: str
    kind: str  # timer | queue | http
    handler: Callable[..., Any]
    binding: dict[str, Any]

    @property
    def queue_name(self) -> str:
        return _resolve_setting(self.binding["queueName"])

    @property
    def schedule(self) -> str:
        return _resolve_setting(self.binding["schedule"])


def _resolve_setting(value: str) -> str:
    """The host resolves ``%NAME%`` binding expressions from app settings."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in os.environ:
            return os.environ[name]
        from shared.config import SETTINGS

        for spec in SETTINGS:
            if spec.name == name and spec.default:
                return spec.default
        raise KeyError(f"binding expression %{name}% has no app setting")

    return re.sub(r"%([A-Za-z0-9_]+)%", sub, value)


_LOADED: dict[str, dict[str, FunctionInfo]] = {}


def load_functions(module_name: str = "function_app") -> dict[str, FunctionInfo]:
    """Index the app's functions (cached: ``FunctionApp.get_functions`` works only once)."""
    if module_name in _LOADED:
        return _LOADED[module_name]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    module = importlib.import_module(module_name)
    functions: dict[str, FunctionInfo] = {}
    for fn in module.app.get_functions():
        trigger = fn.get_trigger()
        binding = trigger.get_dict_repr()
        kind = {"timerTrigger": "timer", "queueTrigger": "queue", "httpTrigger": "http"}.get(
            binding["type"]
        )
        if kind is None:
            raise RuntimeError(f"runner does not support trigger {binding['type']}")
        functions[fn.get_function_name()] = FunctionInfo(
            name=fn.get_function_name(),
            kind=kind,
            handler=fn.get_user_function(),
            binding=binding,
        )
    _LOADED[module_name] = functions
    return functions


async def _call(handler: Callable[..., Any], **kwargs: Any) -> Any:
    params = inspect.signature(handler).parameters
    result = handler(**{k: v for k, v in kwargs.items() if k in params})
    if inspect.isawaitable(result):
        result = await result
    return result


_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")

# A failed message comes back after this many seconds during a drain (the host waits
# visibilityTimeout): short enough for tests, long enough not to spin on a held claim.
DRAIN_RETRY_DELAY = 1


# A refusal the front answers itself: (status, headers, body).
Refusal = tuple[int, dict[str, str], bytes]
# (path, request headers, bound port) -> (refusal or None, the headers the function gets).
Admit = Callable[[str, dict[str, str], int], tuple[Refusal | None, dict[str, str]]]


@dataclass
class QueueStats:
    processed: int = 0
    failed_attempts: int = 0
    poisoned: int = 0  # moved after maxDequeueCount failed attempts
    undecodable: int = 0  # not base64: moved to -poison at once, function not invoked


def decode_host_message(content: str) -> bytes | None:
    """The body the host hands the function for a base64 message, or ``None`` if the
    host could not decode it. .NET's ``Convert.FromBase64String`` skips white space and
    otherwise accepts only the standard, padded alphabet."""
    compact = "".join(content.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass
class LocalRunner:
    """Drives the app's triggers against the storage in ``AzureWebJobsStorage``."""

    functions: dict[str, FunctionInfo] = field(default_factory=load_functions)
    semantics: QueueSemantics = field(default_factory=QueueSemantics.from_host_json)
    stats: dict[str, QueueStats] = field(default_factory=dict)
    # How long a received message stays invisible (renewed at half while it is processed).
    receive_visibility_s: int = 60
    _queues: Any = None
    _raw: dict[str, Any] = field(default_factory=dict)

    def _queue_client(self) -> Any:
        if self._queues is None:
            from shared.adapters.storage import StorageQueues
            from shared.config import StorageSettings

            self._queues = StorageQueues(
                StorageSettings(os.environ["AzureWebJobsStorage"], None, None, None), None
            )
        return self._queues

    def _raw_queue(self, name: str) -> Any:
        """A client without message encoding: receives what is on the wire (so one bad
        message cannot break a whole receive) and copies poison messages unchanged."""
        client = self._raw.get(name)
        if client is None:
            from azure.storage.queue.aio import QueueClient

            from shared.adapters.http_env import azure_transport_kwargs

            # Like the app's clients: no netrc/proxy lookup in a worker thread per request
            # (two thread hops per receive and delete, the host's work, not the app's).
            client = self._raw[name] = QueueClient.from_connection_string(
                os.environ["AzureWebJobsStorage"], name, **azure_transport_kwargs()
            )
        return client

    async def _receive(self, queue: str, max_messages: int) -> list[Any]:
        pager = self._raw_queue(queue).receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=self.receive_visibility_s,
        )
        return [message async for message in pager]

    async def _to_poison(self, queue: str, message: Any, pop_receipt: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        from shared.adapters.storage import poison_queue_name

        poison = self._raw_queue(poison_queue_name(queue))
        with contextlib.suppress(ResourceExistsError):
            await poison.create_queue()
        await poison.send_message(message.content)
        await self._raw_queue(queue).delete_message(message.id, pop_receipt)

    async def _keep_invisible(
        self, raw: Any, message: Any, receipt: list[str], done: asyncio.Event
    ) -> None:
        """Until ``done``, renew the message's invisibility halfway to its expiry. Each
        update returns a new pop receipt, which the delete then needs; so an update under
        way is let finish, never cancelled (its new receipt would be lost)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.receive_visibility_s / 2)
                return
            try:
                updated = await raw.update_message(
                    message.id, receipt[0], visibility_timeout=self.receive_visibility_s
                )
            except Exception as exc:  # as on the host: the message may be redelivered
                log.warning("could not keep message %s invisible: %s", message.id, exc)
                continue
            receipt[0] = updated.pop_receipt

    def by_kind(self, kind: str) -> list[FunctionInfo]:
        return [f for f in self.functions.values() if f.kind == kind]

    async def fire_timer(self, name: str, past_due: bool = False) -> None:
        info = self.functions[name]
        if info.kind != "timer":
            raise ValueError(f"{name} is not a timer function")
        param = info.binding["name"]
        from azure.functions.timer import TimerRequest

        await _call(info.handler, **{param: TimerRequest(past_due=past_due)})

    async def drain(
        self,
        names: list[str] | None = None,
        *,
        max_rounds: int = 10_000,
        idle_rounds: int = 1,
    ) -> dict[str, QueueStats]:
        """Process queue messages until every queue stays empty for ``idle_rounds`` polls.

        Failed messages come back after ``DRAIN_RETRY_DELAY`` (instead of the host's
        ``visibilityTimeout``) so a drain finishes quickly; dequeue counting and the
        move to ``-poison`` follow the host.
        """
        infos = [self.functions[n] for n in names] if names else self.by_kind("queue")
        idle = 0
        for _ in range(max_rounds):
            results = await asyncio.gather(*(self._pump(info) for info in infos))
            if sum(results) == 0 and await self._hidden(infos):
                await asyncio.sleep(0.25)  # failed messages waiting out their retry delay
                continue
            if sum(results) == 0:
                idle += 1
                if idle >= idle_rounds:
                    break
            else:
                idle = 0
        return self.stats

    async def _hidden(self, infos: list[FunctionInfo]) -> int:
        """Messages still on the queues (counted even while invisible)."""
        from azure.core.exceptions import ResourceNotFoundError

        total = 0
        for info in infos:
            try:
                total += await self._queue_client().approximate_count(info.queue_name)
            except ResourceNotFoundError:
                pass
        return total

    async def _pump(self, info: FunctionInfo) -> int:
        """Process one queue until it is empty, refilling like the host: a new batch is
        fetched as soon as in-flight messages drop to ``newBatchThreshold``, so one slow
        message never stalls the other slots. Returns the messages seen."""
        from azure.core.exceptions import ResourceNotFoundError

        queue = info.queue_name
        threshold = self.semantics.new_batch_threshold
        inflight: set[asyncio.Task[None]] = set()
        seen = 0
        while True:
            if len(inflight) <= threshold:
                try:
                    batch = await self._receive(queue, min(32, self.semantics.batch_size))
                except ResourceNotFoundError:
                    batch = []
                seen += len(batch)
                inflight |= {
                    asyncio.create_task(self._process(info, queue, m, DRAIN_RETRY_DELAY))
                    for m in batch
                }
                if batch:
                    continue
                if not inflight:
                    return seen
            _, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)

    async def _poll_once(self, info: FunctionInfo, retry_delay: float) -> int:
        """Receive one batch and process it concurrently; returns messages seen."""
        queue = info.queue_name
        concurrency = self.semantics.batch_size + self.semantics.new_batch_threshold
        from azure.core.exceptions import ResourceNotFoundError

        try:
            messages = await self._receive(queue, min(32, concurrency))
        except ResourceNotFoundError:
            return 0  # like the host, wait for the queue to exist
        if not messages:
            return 0
        await asyncio.gather(*(self._process(info, queue, m, retry_delay) for m in messages))
        return len(messages)

    async def _process(self, info: FunctionInfo, queue: str, message: Any, delay: float) -> None:
        from azure.functions.queue import QueueMessage

        stats = self.stats.setdefault(info.name, QueueStats())
        raw = self._raw_queue(queue)
        body = decode_host_message(message.content)
        if body is None:
            log.warning(
                "message %s on %s is not base64 (host.json messageEncoding); moved to poison",
                message.id,
                queue,
            )
            await self._to_poison(queue, message, message.pop_receipt)
            stats.undecodable += 1
            return
        qmsg = QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            pop_receipt=message.pop_receipt,
        )
        receipt, done = [message.pop_receipt], asyncio.Event()
        renewal = asyncio.create_task(self._keep_invisible(raw, message, receipt, done))
        error: Exception | None = None
        try:
            await _call(info.handler, **{info.binding["name"]: qmsg})
        except Exception as exc:
            error = exc
        finally:
            done.set()  # also when this processing is cancelled: the renewals stop
        await renewal
        if error is not None:
            stats.failed_attempts += 1
            log.warning(
                "%s failed on attempt %d", info.name, message.dequeue_count, exc_info=error
            )
            if message.dequeue_count >= self.semantics.max_dequeue_count:
                await self._to_poison(queue, message, receipt[0])
                stats.poisoned += 1
            else:
                await raw.update_message(message.id, receipt[0], visibility_timeout=int(delay))
            return
        await raw.delete_message(message.id, receipt[0])
        stats.processed += 1

    async def serve_queues(self, stop: asyncio.Event) -> None:
        """Poll every queue like the host (back-off up to maxPollingInterval) until stop."""

        async def loop(info: FunctionInfo) -> None:
            wait = 0.1
            while not stop.is_set():
                seen = await self._poll_once(info, self.semantics.visibility_timeout)
                if seen:
                    wait = 0.1
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                wait = min(wait * 2, self.semantics.max_polling_interval)

        await asyncio.gather(*(loop(info) for info in self.by_kind("queue")))

    async def serve_timers(self, stop: asyncio.Event) -> None:
        from croniter import croniter

        async def loop(info: FunctionInfo) -> None:
            # NCRONTAB has a leading seconds field (validated like shared/config does).
            from shared.config import ncrontab_problem, normalise_ncrontab

            problem = ncrontab_problem(info.schedule)
            if problem is not None:
                raise ValueError(f"timer {info.name}: schedule {info.schedule!r} {problem}")
            schedule = croniter(
                normalise_ncrontab(info.schedule), datetime.now(UTC), second_at_beginning=True
            )
            while not stop.is_set():
                due = schedule.get_next(datetime)
                delay = (due - datetime.now(UTC)).total_seconds()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, delay))
                if not stop.is_set():
                    try:
                        await self.fire_timer(info.name)
                    except Exception:
                        log.exception("timer %s failed", info.name)

        await asyncio.gather(*(loop(info) for info in self.by_kind("timer")))

    # ---------------------------------------------------------------- HTTP
    def _routes(self) -> list[tuple[re.Pattern[str], set[str], FunctionInfo]]:
        routes = []
        for info in self.by_kind("http"):
            template = info.binding.get("route") or info.name
            pattern = re.sub(r"\{(\w+)(:[^}]*)?\}", r"(?P<\1>[^/]+)", template.strip("/"))
            # The host answers every method when a trigger lists none (function.json
            # "methods": "If not specified, the function responds to all HTTP methods").
            methods = {
                str(getattr(m, "value", m)).upper()
                for m in info.binding.get("methods") or _ALL_METHODS
            }
            routes.append((re.compile(f"^{pattern}$"), methods, info))
        return routes

    async def handle_http(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: bytes = b"",
        url: str = "http://127.0.0.1/",
    ) -> tuple[int, dict[str, str], bytes]:
        import azure.functions as func

        prefix = "api/"
        route = path.lstrip("/")
        if not route.startswith(prefix):
            return 404, {"Content-Type": "application/json"}, b'{"error":"not found"}'
        route = route[len(prefix) :]
        allowed_elsewhere = False
        for pattern, methods, info in self._routes():
            match = pattern.match(route)
            if not match:
                continue
            if method.upper() not in methods:
                allowed_elsewhere = True
                continue
            request = func.HttpRequest(
                method=method.upper(),
                url=url,
                headers=headers or {},
                params=params or {},
                route_params={k: unquote(v) for k, v in match.groupdict().items()},
                body=body,
            )
            response = await _call(info.handler, **{info.binding["name"]: request})
            return (
                response.status_code,
                dict(response.headers),
                response.get_body(),
            )
        if allowed_elsewhere:
            return 405, {"Content-Type": "application/json"}, b'{"error":"method not allowed"}'
        return 404, {"Content-Type": "application/json"}, b'{"error":"not found"}'

    async def serve_http(
        self, host: str = "127.0.0.1", port: int = 0, admit: Admit | None = None
    ) -> Any:
        """Start an aiohttp server for the HTTP triggers; returns (runner, port).

        ``admit`` (the App Service Authentication double, ``devtools/easyauth.py``) sees
        each request's path, headers and the bound port first: it answers a refusal
        (status, headers, body) itself, or hands on the headers the function receives.
        """
        from aiohttp import web

        async def dispatch(request: web.Request) -> web.Response:
            # Match on the raw path like the host's router: an encoded "/" (%2F) stays
            # inside its segment; segments are decoded after matching.
            path = request.raw_path.split("?", 1)[0]
            headers = dict(request.headers)
            if admit is not None:
                refusal, headers = admit(path, headers, bound)
                if refusal is not None:
                    status, refusal_headers, body = refusal
                    return web.Response(status=status, headers=refusal_headers, body=body)
            status, out_headers, payload = await self.handle_http(
                request.method,
                path,
                headers=headers,
                params=dict(request.query),
                body=await request.read(),
                url=str(request.url),
            )
            out_headers.pop("Content-Length", None)
            return web.Response(status=status, headers=out_headers, body=payload)

        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", dispatch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return runner, bound

    async def close(self) -> None:
        if self._queues is not None:
            await self._queues.close()
            self._queues = None
        for client in self._raw.values():
            await client.close()
        self._raw.clear()


def encode_for_host(text: str) -> str:
    """What the host expects on the wire for a queue message (base64 of UTF-8)."""
    return base64.b64encode(text.encode()).decode()


async def serve(port: int, duration: float | None = None) -> None:
    """Run every trigger like the host does: timers on schedule, queues, HTTP."""
    runner = LocalRunner()
    stop = asyncio.Event()
    http_runner, bound = await runner.serve_http(port=port)
    log.warning("HTTP functions on http://127.0.0.1:%d/api/ ; Ctrl+C stops", bound)
    tasks = [
        asyncio.create_task(runner.serve_timers(stop)),
        asyncio.create_task(runner.serve_queues(stop)),
    ]
    try:
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http_runner.cleanup()
        await runner.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m devtools.runner",
        description="Run function_app.py locally (settings from the environment).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="timers on schedule, queues, HTTP")
    serve_cmd.add_argument("--port", type=int, default=7071)
    serve_cmd.add_argument("--duration", type=float, help="stop after this many seconds")
    fire = sub.add_parser("fire", help="fire one timer function once, then drain the queues")
    fire.add_argument("function")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        asyncio.run(serve(args.port, args.duration))
        return 0

    async def fire_and_drain() -> None:
        runner = LocalRunner()
        try:
            await runner.fire_timer(args.function)
            stats = await runner.drain()
            print(json.dumps({k: vars(v) for k, v in stats.items()}, indent=2))
        finally:
            await runner.close()

    asyncio.run(fire_and_drain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
