"""Guest work as an Azure Functions blueprint: the support API, the reset and access-review
queues, and the review and hygiene timers (registered in ``function_app.py``).

Triggers only: each function unpacks its binding and awaits ``http_api`` or
``guest_triggers``. HTTP functions are ANONYMOUS at the Functions level because App
Service Authentication (Entra) sits in front; ``http_api`` checks the caller's app role.
Only ``azure.functions`` and ``shared.config`` are imported here (cold start).

Routes carry no ``methods`` filter: ``http_api`` answers a wrong method with 405 and an
``Allow`` header itself, the same under the Functions host and the local runner.
"""

import azure.functions as func

from shared.config import QUEUE_ACCESS_REVIEWS, QUEUE_REINVITES

bp = func.Blueprint()

STORAGE = "AzureWebJobsStorage"
ANONYMOUS = func.AuthLevel.ANONYMOUS


@bp.route(route="v1/reinvites", auth_level=ANONYMOUS)
async def api_reinvite_create(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("create_reinvite", req)


@bp.route(route="v1/reinvites/{jobId}", auth_level=ANONYMOUS)
async def api_reinvite_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("get_reinvite", req)


@bp.route(route="v1/clients/{tenantId}/posture", auth_level=ANONYMOUS)
async def api_client_posture(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("get_posture", req)


@bp.route(route="v1/clients/{tenantId}/access-review", auth_level=ANONYMOUS)
async def api_access_review_ensure(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("ensure_access_review", req)


@bp.route(route="v1/access-reviews/{jobId}", auth_level=ANONYMOUS)
async def api_access_review_status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("get_access_review", req)


@bp.route(route="v1/health", auth_level=ANONYMOUS)
async def api_health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("health", req)


@bp.route(route="v1/openapi.json", auth_level=ANONYMOUS)
async def api_openapi(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("openapi", req)


@bp.route(route="v1/report", auth_level=ANONYMOUS)
async def api_report(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("get_report", req)


@bp.route(route="v1/whatif", auth_level=ANONYMOUS)
async def api_whatif(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("whatif", req)


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_REINVITES, connection=STORAGE)
async def reinvite_job(msg: func.QueueMessage) -> None:
    from shared.entrypoints import guest_triggers

    await guest_triggers.reinvite_job(msg.get_body().decode("utf-8"), msg.dequeue_count or 1)


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_ACCESS_REVIEWS, connection=STORAGE)
async def access_review_job(msg: func.QueueMessage) -> None:
    from shared.entrypoints import guest_triggers

    await guest_triggers.access_review_job(
        msg.get_body().decode("utf-8"), msg.dequeue_count or 1
    )


@bp.timer_trigger(arg_name="timer", schedule="%XTAP_REVIEW_SCHEDULE%", run_on_startup=False)
async def access_review_timer(timer: func.TimerRequest) -> None:
    from shared.entrypoints import guest_triggers

    await guest_triggers.access_review_timer()


@bp.timer_trigger(arg_name="timer", schedule="%XTAP_HYGIENE_SCHEDULE%", run_on_startup=False)
async def guest_hygiene_timer(timer: func.TimerRequest) -> None:
    from shared.entrypoints import guest_triggers

    await guest_triggers.guest_hygiene_timer()
