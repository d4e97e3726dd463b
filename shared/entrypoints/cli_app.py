"""Running an async use case from the CLI with a freshly built App.

Before the use case runs, what it needs is checked, quickest first, so a mistake costs a
second and one line instead of a minute and a traceback:

1. the settings the command needs — every problem at once, and only those (a command that
   only reads the registry does not ask for Graph credentials);
2. storage answers (one probe without retries);
3. the vendor identity gets a token (commands that call Graph);
4. for one client, the reader identity gets a token in that tenant — a refusal that means
   "not consented" is the client's state and is left to the check; any other refusal (a
   wrong secret, AADSTS7000215) is the vendor's configuration and stops here.

Failures become :class:`CommandFailed` (one line, an exit status); ``shared.cli`` prints it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from shared.entrypoints.cli_common import EXIT_BAD_INPUT, EXIT_FAILED

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.config import ConfigError, Settings

T = TypeVar("T")

# What a command needs (``needs=``): each names the settings it makes required.
STORAGE = "storage"  # AzureWebJobsStorage (or its identity-based endpoints)
TENANT = "tenant"  # XTAP_VENDOR_TENANT_ID
GRAPH = "graph"  # the vendor identity: tenant + credential
APPS = "apps"  # XTAP_VENDOR_APP_IDS (posture is judged against them)
READER = "reader"  # the client reader app and its credential

_PLACEHOLDER_TENANT = "00000000-0000-0000-0000-000000000000"
TOKEN_TIMEOUT_SECONDS = 20.0
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class CommandFailed(Exception):
    """A command could not do its work: one line, and the exit status to end with."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SettingsInvalid(Exception):
    """Settings the command needs are missing or wrong (each problem one line)."""

    def __init__(self, problems: list[ConfigError]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def settings_for(needs: Collection[str], env: Mapping[str, str] | None = None) -> Settings:
    """The settings, validated, asking only for what ``needs`` names.

    Required settings a command does not need are filled with inert stand-ins, so their
    absence is not reported; malformed values are always reported.
    """
    from shared.config import ConfigError, ConfigErrors, credential_problems, load_settings

    source = dict(os.environ if env is None else env)
    stand_ins: dict[str, str] = {}
    if not ({TENANT, GRAPH} & set(needs)):
        stand_ins["XTAP_VENDOR_TENANT_ID"] = _PLACEHOLDER_TENANT
    if APPS not in needs:
        stand_ins["XTAP_VENDOR_APP_IDS"] = _PLACEHOLDER_TENANT
    if STORAGE not in needs:
        stand_ins["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    effective = source | {k: v for k, v in stand_ins.items() if not (source.get(k) or "").strip()}
    problems: list[ConfigError] = []
    settings = None
    try:
        settings = load_settings(effective)
    except ConfigErrors as exc:
        problems += exc.problems
    except ConfigError as exc:
        problems.append(exc)
    if GRAPH in needs:
        named = {p.setting for p in problems}
        problems += [
            p
            for p in credential_problems(effective, reader=READER in needs)
            if p.setting not in named
        ]
    if problems or settings is None:
        raise SettingsInvalid(problems)
    return settings


def run_with_app(
    use_case: Callable[[App], Awaitable[T]],
    *,
    needs: Collection[str] = (STORAGE,),
    reader_tenant: str | None = None,
) -> T:
    from shared.bootstrap import build_app, set_app

    settings = settings_for(needs)

    async def main() -> T:
        from shared.adapters.storage import INTERACTIVE

        built = build_app(settings)
        # A person is waiting: storage calls fail fast instead of retrying like background
        # work (same clients and pools, other per-call bounds).
        app = replace(
            built,
            tables=built.tables.with_policy(INTERACTIVE),
            queues=built.queues.with_policy(INTERACTIVE),
        )
        set_app(app)
        try:
            if STORAGE in needs:
                await _check_storage(app)
            if GRAPH in needs:
                await _check_token(app.graph.vendor_credential, app.settings, None)
            if reader_tenant is not None and READER in needs:
                await _check_token(
                    app.graph.reader_credential(reader_tenant), app.settings, reader_tenant
                )
            return await use_case(app)
        finally:
            set_app(None)
            await built.close()

    try:
        return asyncio.run(main())
    except (CommandFailed, SettingsInvalid, KeyboardInterrupt):
        raise
    except Exception as exc:
        failure = _explain(exc, settings)
        if failure is None:
            raise
        raise failure from exc


def _explain(exc: BaseException, settings: Settings) -> CommandFailed | None:
    from shared.entrypoints.cli_errors import describe

    failure = describe(exc, settings)
    return CommandFailed(failure.message, failure.exit_code) if failure else None


def storage_target(settings: Settings) -> str:
    """Where storage is, for messages: the queue endpoint, or 'UseDevelopmentStorage'."""
    s = settings.storage
    if s.connection_string:
        for part in s.connection_string.split(";"):
            key, _, value = part.partition("=")
            if key.strip().lower() == "queueendpoint" and value:
                return value.strip().rstrip("/")
        return "the account in AzureWebJobsStorage"
    return s.queue_service_uri or "the storage account"


async def _check_storage(app: App) -> None:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    from shared.adapters.storage import PROBE

    where = storage_target(app.settings)
    setting = "AzureWebJobsStorage"
    try:
        probe = replace(
            app, tables=app.tables.with_policy(PROBE), queues=app.queues.with_policy(PROBE)
        )
        await probe.ensure_storage()
    except (ServiceRequestError, ServiceResponseError) as exc:
        reason = "no answer" if isinstance(exc, ServiceResponseError) else "not reachable"
        raise CommandFailed(
            f"storage is {reason} at {where} ({setting}): start it (locally:"
            " ./scripts/demo --keep starts Azurite and prints the settings to source) or fix"
            f" {setting}"
        ) from exc
    except ClientAuthenticationError as exc:
        raise CommandFailed(
            f"storage at {where} refused the credentials in {setting} (account name or key"
            " wrong; with a managed identity, its Storage Queue/Table Data Contributor roles)",
            EXIT_BAD_INPUT,
        ) from exc
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None) or exc.status_code
        raise CommandFailed(
            f"storage at {where} refused the request ({code}): check {setting}"
        ) from exc
    app._ready = True  # the probe created the queues and tables


async def _check_token(credential: Any, settings: Settings, tenant: str | None) -> None:
    from shared.entrypoints.cli_errors import (
        CONSENT_CODES,
        aadsts_code,
        describe,
        reader_identity,
        vendor_identity,
    )

    who = vendor_identity(settings) if tenant is None else reader_identity(settings, tenant)
    try:
        await asyncio.wait_for(credential.get_token(GRAPH_SCOPE), TOKEN_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise CommandFailed(
            f"the Entra token endpoint ({settings.authority_host}) did not answer in "
            f"{TOKEN_TIMEOUT_SECONDS:.0f} s: check the network and proxy, or XTAP_AUTHORITY_HOST"
        ) from exc
    except Exception as exc:
        if tenant is not None and aadsts_code(str(exc)) in CONSENT_CODES:
            return  # the client has not consented: the check reports that as the client's state
        failure = describe(exc, settings, who)
        if failure is None:
            raise
        raise CommandFailed(failure.message, failure.exit_code) from exc
