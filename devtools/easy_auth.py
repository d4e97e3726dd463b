"""A local stand-in for App Service Authentication in front of the runner's HTTP routes.

In Azure, App Service Authentication signs the user in and hands the function the
``X-MS-CLIENT-PRINCIPAL`` header (any copy sent by the caller is stripped). A browser on
the developer's machine cannot add that header, so the demo serves the runner's routes
through this proxy, which plays that part for one fixed local operator: it drops any
incoming principal header and adds its own. Loopback only; never deployed.
"""

from __future__ import annotations

from typing import Any

from shared.domain.principal import encode_client_principal

PRINCIPAL_HEADER = "x-ms-client-principal"


def demo_operator(tenant_id: str, roles: tuple[str, ...]) -> str:
    return encode_client_principal(
        name="demo.operator@osttra.com",
        object_id="9e8d7c6b-5a49-4382-9170-1f2e3d4c5b6a",
        roles=roles,
        tenant_id=tenant_id,
    )


async def serve_signed_in(runner: Any, principal: str, port: int = 0) -> tuple[Any, int]:
    """Serve ``runner``'s HTTP routes on 127.0.0.1 as ``principal``; returns (site runner, port)."""
    from aiohttp import web

    async def dispatch(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != PRINCIPAL_HEADER}
        headers["X-MS-CLIENT-PRINCIPAL"] = principal
        status, out_headers, payload = await runner.handle_http(
            request.method,
            request.raw_path.split("?", 1)[0],
            headers=headers,
            params=dict(request.query),
            body=await request.read(),
            url=str(request.url),
        )
        out_headers.pop("Content-Length", None)
        return web.Response(status=status, headers=out_headers, body=payload)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    site_runner = web.AppRunner(app, access_log=None)
    await site_runner.setup()
    site = web.TCPSite(site_runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return site_runner, int(bound)
