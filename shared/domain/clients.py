"""The client registry's record: who a client is and how its posture should look."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.messages import GUID_PATTERN


class ConsentStatus(StrEnum):
    UNKNOWN = "unknown"  # never checked
    GRANTED = "granted"  # the read-only app can read the client's policy
    MISSING = "missing"  # not consented, or consent revoked


class ExpectedScope(BaseModel):
    """What the client agreed to allow. Empty lists mean "everyone" / "every vendor app".

    A client that deliberately allows only one group is LIMITED by design: that is not
    drift, and must not page anyone.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    user_groups: tuple[str, ...] = ()
    note: str = ""


class AlertRouting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    emails: tuple[str, ...] = ()
    # Name of an app setting (a Key Vault reference in Azure) holding an extra Teams
    # Workflows webhook URL: the URL itself is a secret and never stored in a table.
    teams_webhook_setting: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")


class ClientRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tenant_id: str = Field(pattern=GUID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    domains: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    consent: ConsentStatus = ConsentStatus.UNKNOWN
    expected_scope: ExpectedScope = ExpectedScope()
    routing: AlertRouting = AlertRouting()
    added_at: datetime | None = None

    @field_validator("tenant_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value if d.strip())

    def owns_domain(self, domain: str) -> bool:
        return domain.lower() in self.domains
