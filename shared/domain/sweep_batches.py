"""How a sweep's checks are packed into queue messages (issue 16.3).

One client per message costs, for every client, a queue send, a share of a receive, a
delete and a Flex execution. Packing a few clients per message keeps retry and poison
per client (``CheckClientBatch``) while those costs are shared. A message must stay under
the queue's size limit, so a group whose JSON would not fit is split in halves until each
part fits; a single check is sent as a plain ``CheckClient`` (what older consumers read).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.domain.messages import (
    MAX_CHECKS_PER_MESSAGE,
    QUEUE_MESSAGE_LIMIT_BYTES,
    CheckClient,
    CheckClientBatch,
)


def pack_checks(
    checks: Sequence[CheckClient],
    per_message: int,
    limit_bytes: int = QUEUE_MESSAGE_LIMIT_BYTES,
) -> list[str]:
    """The JSON texts of the queue messages that carry ``checks``, in order.

    At most ``per_message`` checks per message, fewer where the JSON would pass
    ``limit_bytes``. A single check that is too large on its own is returned as it is:
    the queue adapter refuses it with the reason (it does not fit in any message).
    """
    if not 1 <= per_message <= MAX_CHECKS_PER_MESSAGE:
        raise ValueError(f"per_message must be 1..{MAX_CHECKS_PER_MESSAGE}, got {per_message}")
    texts: list[str] = []
    for start in range(0, len(checks), per_message):
        texts.extend(_fit(list(checks[start : start + per_message]), limit_bytes))
    return texts


def _fit(group: list[CheckClient], limit_bytes: int) -> list[str]:
    if len(group) == 1:
        return [group[0].model_dump_json()]
    text = CheckClientBatch(checks=group).model_dump_json()
    if len(text.encode("utf-8")) <= limit_bytes:
        return [text]
    half = len(group) // 2
    return _fit(group[:half], limit_bytes) + _fit(group[half:], limit_bytes)

