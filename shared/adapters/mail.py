"""Sending mail with Graph ``POST /users/{sender}/sendMail`` (application Mail.Send)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.adapters.graph import GraphClient, GraphError
from shared.adapters.webhooks import DeliveryError


async def send_mail(graph: GraphClient, sender: str, payload: dict[str, Any]) -> None:
    path = f"/users/{quote(sender, safe='@.')}/sendMail"
    try:
        response = await graph.request("POST", path, body=payload)
        response.raise_for_status(path)
    except GraphError as exc:
        raise DeliveryError(
            f"sendMail failed: {exc.status} {exc.code}: {exc.message}",
            transient=exc.transient,
            status=exc.status,
        ) from exc
