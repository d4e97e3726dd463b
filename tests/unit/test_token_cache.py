"""Client tenants' tokens kept beyond the credential cache (issue 16.3), bounded.

The inner credential here is a stand-in with azure-identity's ``get_token`` signature that
counts its calls (the wrapper's caching is what is tested, not azure-identity).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from azure.core.credentials import AccessToken

from shared.adapters.credentials import (
    TOKEN_REFRESH_MARGIN_S,
    BoundedCache,
    ClassifiedCredential,
    TokenKey,
)

TENANT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
OTHER = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
SCOPE = "https://graph.microsoft.com/.default"


class CountingCredential:
    def __init__(self, lifetime_s: float = 3600) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lifetime_s = lifetime_s

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(kwargs)
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime_s))

    async def close(self) -> None:
        return None


def _token(credential: ClassifiedCredential, **kwargs: Any) -> str:
    return asyncio.run(credential.get_token(SCOPE, **kwargs)).token


def test_a_kept_token_is_reused_by_a_new_credential_for_the_same_tenant():
    tokens = BoundedCache[TokenKey, AccessToken](8)
    first, second = CountingCredential(), CountingCredential()
    assert _token(ClassifiedCredential(first, TENANT, tokens=tokens)) == "token-1"
    # The credential was evicted and rebuilt (the tenant LRU is small): the token is kept.
    assert _token(ClassifiedCredential(second, TENANT, tokens=tokens)) == "token-1"
    assert (len(first.calls), len(second.calls)) == (1, 0)


def test_a_token_close_to_expiry_is_asked_for_again():
    tokens = BoundedCache[TokenKey, AccessToken](8)
    inner = CountingCredential(lifetime_s=TOKEN_REFRESH_MARGIN_S - 1)
    credential = ClassifiedCredential(inner, TENANT, tokens=tokens)
    assert _token(credential) == "token-1"
    assert _token(credential) == "token-2"


def test_a_claims_challenge_bypasses_the_kept_token_and_replaces_it():
    tokens = BoundedCache[TokenKey, AccessToken](8)
    inner = CountingCredential()
    credential = ClassifiedCredential(inner, TENANT, tokens=tokens)
    _token(credential)
    assert _token(credential, claims='{"access_token":{"nbf":{"essential":true}}}') == "token-2"
    assert _token(credential) == "token-2"  # the fresh one is what is kept
    assert len(inner.calls) == 2


def test_tokens_are_kept_per_tenant_and_the_cache_stays_within_its_size():
    tokens = BoundedCache[TokenKey, AccessToken](1)
    a, b = CountingCredential(), CountingCredential()
    _token(ClassifiedCredential(a, TENANT, tokens=tokens))
    assert _token(ClassifiedCredential(b, OTHER, tokens=tokens)) == "token-1"  # b's own
    assert len(tokens) == 1 and tokens.evictions == 1
    _token(ClassifiedCredential(a, TENANT, tokens=tokens))  # evicted: asked again
    assert len(a.calls) == 2


def test_without_a_cache_every_call_goes_to_the_inner_credential():
    inner = CountingCredential()
    credential = ClassifiedCredential(inner, TENANT)
    _token(credential)
    _token(credential)
    assert len(inner.calls) == 2


class SlowCredential(CountingCredential):
    """Answers once released, or fails with ``error``: what several callers see meanwhile."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.error = error

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(kwargs)
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime_s))


def test_callers_at_once_share_one_request_for_the_same_token():
    """The sweep's fan-out reads the vendor's policies at once: one token request."""

    async def run() -> tuple[list[str], int]:
        inner = SlowCredential()
        credential = ClassifiedCredential(inner, TENANT)  # the vendor's: no shared cache
        callers = [asyncio.create_task(credential.get_token(SCOPE)) for _ in range(5)]
        await asyncio.sleep(0)
        inner.release.set()
        return [t.token for t in await asyncio.gather(*callers)], len(inner.calls)

    tokens, calls = asyncio.run(run())
    assert tokens == ["token-1"] * 5 and calls == 1


def test_a_shared_request_that_fails_fails_every_caller_and_the_next_asks_again():
    async def run() -> tuple[list[BaseException | AccessToken], int, str]:
        inner = SlowCredential(error=RuntimeError("login host down"))
        credential = ClassifiedCredential(inner, TENANT)
        callers = [asyncio.create_task(credential.get_token(SCOPE)) for _ in range(3)]
        await asyncio.sleep(0)
        inner.release.set()
        outcomes = await asyncio.gather(*callers, return_exceptions=True)
        inner.error = None
        later = await credential.get_token(SCOPE)
        return outcomes, len(inner.calls), later.token

    outcomes, calls, later = asyncio.run(run())
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert calls == 2 and later == "token-2"


def test_when_the_caller_asking_is_cancelled_a_waiting_one_asks_itself():
    async def run() -> tuple[str, int]:
        inner = SlowCredential()
        credential = ClassifiedCredential(inner, TENANT)
        asking = asyncio.create_task(credential.get_token(SCOPE))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(credential.get_token(SCOPE))
        await asyncio.sleep(0)
        asking.cancel()
        await asyncio.sleep(0)
        inner.release.set()
        token = await waiting
        return token.token, len(inner.calls)

    token, calls = asyncio.run(run())
    assert token == "token-2" and calls == 2


def test_different_tenants_are_not_shared():
    async def run() -> int:
        inner = SlowCredential()
        first = ClassifiedCredential(inner, TENANT)
        second = ClassifiedCredential(inner, OTHER)
        callers = [asyncio.create_task(c.get_token(SCOPE)) for c in (first, second)]
        await asyncio.sleep(0)
        inner.release.set()
        await asyncio.gather(*callers)
        return len(inner.calls)

    assert asyncio.run(run()) == 2
