"""One sweep of the demo registry in a new app, as after a restart of the Functions host."""

from __future__ import annotations

from typing import Any

from devtools.local_env import load_demo_scenario, seed_registry


async def sweep_demo_registry(
    extra_clients: tuple[Any, ...] = (),
) -> tuple[dict[str, dict[str, Any]], Any]:
    """Register the demo clients (and ``extra_clients``), fire the sweep timer, drain the
    check queue; the posture rows by tenant and the check queue's stats."""
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import ClientRegistry, PostureStore
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    for client in extra_clients:
        await ClientRegistry(app.tables).upsert(client)
    runner = LocalRunner()
    try:
        await runner.fire_timer("sweep_timer")
        stats = await runner.drain(["check_client"])
        postures = {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
        return postures, stats["check_client"]
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def add_government_client(demo_sim: Any) -> Any:
    """A client tenant in Azure Government (another Microsoft cloud than the vendor's),
    added to the simulator; its registry record (not yet registered)."""
    import uuid

    from shared.domain.clients import ClientRecord

    tenant = str(uuid.uuid4())
    demo_sim.control.add_tenant(
        {
            "id": tenant,
            "displayName": "Fourth Coffee (Azure Government)",
            "domains": ["fourthcoffee-gov.example"],
            "cloudInstanceName": "microsoftonline.us",
        }
    )
    return ClientRecord(
        tenant_id=tenant, name="Fourth Coffee", domains=("fourthcoffee-gov.example",)
    )
