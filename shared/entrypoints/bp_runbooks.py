"""The runbook pages as an Azure Functions blueprint (registered in ``function_app.py``).

Triggers only; ``http_runbooks`` answers. ANONYMOUS on purpose (see ``http_runbooks``):
alert readers open these links without the support API's role. Only ``azure.functions`` is
imported here (cold start).
"""

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="v1/runbooks", auth_level=func.AuthLevel.ANONYMOUS)
def api_runbook_index(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_runbooks import respond

    return respond(req)


@bp.route(route="v1/runbooks/{code}", auth_level=func.AuthLevel.ANONYMOUS)
def api_runbook(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entrypoints.http_runbooks import respond

    return respond(req)
