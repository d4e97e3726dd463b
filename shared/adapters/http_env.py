"""Whether the process relies on proxy settings from the environment.

aiohttp sessions that "trust the environment" (azure-core's default for its aiohttp
transport) look up a netrc file and the proxy for *every* request in a worker thread: two
thread hops per storage or token request, about a fifth of a check's CPU measured on the
sweep benchmark. Without any proxy variable set (the case in Azure Functions, whose egress
is direct or through a NAT gateway), nothing is lost by not trusting it; with one set, the
SDK defaults are kept so an operator's proxy still works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NETRC")


def environment_proxies_in_use(env: Mapping[str, str] | None = None) -> bool:
    source = os.environ if env is None else env
    return any(source.get(name) or source.get(name.lower()) for name in PROXY_VARIABLES)


def azure_transport_kwargs() -> dict[str, bool]:
    """Keyword arguments for Azure SDK clients: skip per-request environment lookups."""
    return {} if environment_proxies_in_use() else {"use_env_settings": False}
