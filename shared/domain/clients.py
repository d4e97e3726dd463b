"""The client registry's record: who a client is and how its posture should look."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.domain.messages import GUID_PATTERN
from shared.domain.tenant_cloud import KnownCloud

# Records are read in either key style (stored rows and old exports: snake_case; the CLI's
# and the API's JSON: camelCase) and exported in camelCase (``by_alias=True``).
_CONFIG = ConfigDict(
    extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
)


def email_addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each value as a normalised e-mail address, or ValueError naming the bad one.

    Syntax only (email-validator, no DNS lookup): a typo in a client contact would
    otherwise surface as a failed delivery at the worst moment.
    """
    out: list[str] = []
    for value in values:
        try:
            out.append(validate_email(value.strip(), check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise ValueError(f"not an e-mail address: {value!r} ({exc})") from None
    return tuple(dict.fromkeys(out))


class ConsentStatus(StrEnum):
    UNKNOWN = "unknown"  # never checked
    GRANTED = "granted"  # the read-only app can read the client's policy
    MISSING = "missing"  # not consented, or consent revoked


class ExpectedScope(BaseModel):
    """What the client agreed to allow. Empty lists mean "everyone" / "every vendor app".

    A client that deliberately allows only one group is LIMITED by design: that is not
    drift, and must not page anyone.
    """

    model_config = _CONFIG
    user_groups: tuple[str, ...] = ()
    note: str = ""


class AlertRouting(BaseModel):
    model_config = _CONFIG
    emails: tuple[str, ...] = ()
    # Name of an app setting (a Key Vault reference in Azure) holding an extra Teams
    # Workflows webhook URL: the URL itself is a secret and never stored in a table.
    teams_webhook_setting: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return email_addresses(value)


class RegisteredCloud(BaseModel):
    """The client's Microsoft cloud as looked up when it was registered.

    Registering (``clients add``, ``clients import``) looks it up, so the first sweep after
    registering thousands of clients need not: it is trusted like the entry a check keeps
    in the alert state (``tenant_cloud.is_fresh``), and looked up again once stale.
    """

    model_config = _CONFIG
    # A cloud_instance_name (microsoftonline.com, microsoftonline.us, ...), lower-cased.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$", max_length=64)
    checked_at: AwareDatetime

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return value.lower()

    @classmethod
    def of(cls, known: KnownCloud) -> RegisteredCloud:
        return cls(name=known.name, checked_at=known.checked_at)

    def known(self) -> KnownCloud:
        return KnownCloud(self.name, self.checked_at)


class ClientRecord(BaseModel):
    model_config = _CONFIG
    tenant_id: str = Field(pattern=GUID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    domains: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    consent: ConsentStatus = ConsentStatus.UNKNOWN
    expected_scope: ExpectedScope = ExpectedScope()
    routing: AlertRouting = AlertRouting()
    added_at: datetime | None = None
    cloud: RegisteredCloud | None = None

    @field_validator("tenant_id")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value if d.strip())

    @field_validator("contacts")
    @classmethod
    def _contacts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return email_addresses(value)

    def owns_domain(self, domain: str) -> bool:
        return domain.lower() in self.domains
