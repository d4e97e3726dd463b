"""How a sweep's checks are packed into queue messages (issue 16.3).

One client per message costs, for every client, a queue send, a share of a receive, a
delete and a Flex execution. Packing a few clients per message keeps retry and poison
per client (``CheckClientBatch``) while those costs are shared. A message must stay under
the queue's size limit, so a group whose JSON would not fit is split in halves until each
part fits; a single check is sent as a plain ``CheckClient`` (what older consumers read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from shared.domain.messages import (
    MAX_CHECKS_PER_MESSAGE,
    QUEUE_MESSAGE_LIMIT_BYTES,
    CheckClient,
    CheckClientBatch,
)

T = TypeVar("T")


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



class MessageGroups(Generic[T]):
    """A sweep's clients cut into messages of consecutive tenant IDs, each handed out as
    soon as every one of its clients is decided.

    Consecutive tenant IDs make each message one key range of the registry and of the alert
    states (its check reads both in one go). The fan-out decides a client when the vendor's
    partner list shows its entry, or, for a client without one, after the list's last page:
    a message goes out when its last client is decided, so checks run while the list is
    still being paged. How early depends on the order Graph lists partners in, which is
    undocumented: in tenant-ID order the messages go out page by page, in any other order
    later, never wrong.
    """

    def __init__(self, tenant_ids: Sequence[str], per_message: int) -> None:
        if per_message < 1:
            raise ValueError(f"per_message must be at least 1, got {per_message}")
        ordered = sorted(set(tenant_ids))
        self._group_of = {tenant: index // per_message for index, tenant in enumerate(ordered)}
        self._waiting = [
            min(per_message, len(ordered) - start) for start in range(0, len(ordered), per_message)
        ]
        self._decided: list[dict[str, T]] = [{} for _ in self._waiting]

    @property
    def undecided(self) -> int:
        """Clients not decided yet."""
        return sum(self._waiting)

    def decide(self, tenant_id: str, item: T) -> list[T] | None:
        """Record ``item`` for ``tenant_id``; the message's items in tenant-ID order when
        this was its last client, else None. A tenant decided twice, or not one of the
        sweep's, is a programming error."""
        group = self._group_of.get(tenant_id)
        if group is None:
            raise ValueError(f"tenant {tenant_id} is not one of this sweep's clients")
        decided = self._decided[group]
        if tenant_id in decided:
            raise ValueError(f"tenant {tenant_id} was decided twice")
        decided[tenant_id] = item
        self._waiting[group] -= 1
        if self._waiting[group]:
            return None
        self._decided[group] = {}  # handed out: not kept for the rest of the sweep
        return [decided[tenant] for tenant in sorted(decided)]
