"""The doctor's HTTP route as an Azure Functions blueprint (registered in ``function_app.py``).

``GET /api/v1/doctor`` runs every dependency check in the deployed app's own identity for
the support role (``http_api`` authorises the caller); ``GET /api/v1/health?deep=true`` is the
same report on the health route. Only ``azure.functions`` is imported here (cold start).
"""

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="v1/doctor", auth_level=func.AuthLevel.ANONYMOUS)
async def api_doctor(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_api import respond

    return await respond("doctor", req)
