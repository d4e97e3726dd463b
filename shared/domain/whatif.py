"""What-if for the vendor's own policy: which clients a proposed change would break (17.2).

A vendor admin proposes a new default policy and/or new partner entries (Graph JSON, as
``GET /policies/crossTenantAccessPolicy/default`` or ``.../partners/{id}`` exports it, or
just the properties they mean to PATCH). :func:`apply_proposal` lays each proposal over
the current policy the way Graph's PATCH does — every top-level property present in the
proposal replaces the current one whole, absent properties keep their value — and a
partner proposal of ``None`` deletes the entry (the default then applies entirely).
:func:`what_if` runs the vendor-side checks (:func:`evaluate_vendor_side`) for every
registered client against the current and the proposed policy and compares.

A client is **broken** on the vendor side when a vendor-side finding is of HIGH severity:
its guests are refused (AADSTS500213), loop on MFA registration, or cannot be invited or
re-invited. Newly broken / newly recovered compare that; *changed* lists clients whose
findings differ without crossing the line.

Pure: the service reads the current policy from Graph and the registry, this module
decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.domain.finding_catalog import Finding
from shared.domain.messages import Severity
from shared.domain.policy import (
    DefaultPolicy,
    PartnerPolicy,
    PolicyParseError,
    is_guid,
    parse_default_policy,
    parse_partner_policy,
)
from shared.domain.vendor_checks import AuthorizationPolicy, evaluate_vendor_side

MAX_PARTNER_PROPOSALS = 100
# Properties Graph computes or identifies the object with: never part of a proposal.
_READ_ONLY = frozenset({"id", "isservicedefault", "tenantid", "deleteddatetime"})
# Every property of crossTenantAccessPolicyConfigurationDefault / ...Partner (Graph v1.0
# resource pages). Anything else is refused: a misspelt property silently ignored would
# make a harmful proposal look harmless.
_KNOWN_PROPERTIES = _READ_ONLY | frozenset(
    k.lower()
    for k in (
        "automaticUserConsentSettings",
        "b2bCollaborationInbound",
        "b2bCollaborationOutbound",
        "b2bDirectConnectInbound",
        "b2bDirectConnectOutbound",
        "inboundTrust",
        "invitationRedemptionIdentityProviderConfiguration",
        "tenantRestrictions",
        "isServiceProvider",
        "isInMultiTenantOrganization",
        "identitySynchronization",
    )
)


class ProposalError(ValueError):
    """The proposal is malformed: ``label`` names the input, ``path`` the place inside it.

    ``field`` joins them the way the API names fields (``default.inboundTrust``); the CLI
    prints ``--default FILE: inboundTrust: ...``.
    """

    def __init__(self, label: str, message: str, path: str | None = None) -> None:
        self.label = label
        self.path = path
        self.message = message
        super().__init__(f"{label}: {path}: {message}" if path else f"{label}: {message}")

    @property
    def field(self) -> str:
        return f"{self.label}.{self.path}" if self.path else self.label


@dataclass(frozen=True, slots=True)
class ProposedPolicy:
    """One proposed policy object and the name of the input it came from (for errors)."""

    raw: Any
    label: str


@dataclass(frozen=True, slots=True)
class PartnerProposal:
    tenant_id: str
    policy: ProposedPolicy | None  # None: delete the partner entry
    label: str


@dataclass(frozen=True, slots=True)
class Proposal:
    default: ProposedPolicy | None = None
    partners: tuple[PartnerProposal, ...] = ()

    @property
    def empty(self) -> bool:
        return self.default is None and not self.partners


@dataclass(frozen=True)
class VendorPolicies:
    """The vendor's cross-tenant access policy: the default and every partner entry."""

    default_raw: Mapping[str, Any]
    partners_raw: Mapping[str, Mapping[str, Any]]
    default: DefaultPolicy
    partners: Mapping[str, PartnerPolicy]


def vendor_policies(
    default_raw: Mapping[str, Any], partners_raw: Iterable[Mapping[str, Any]]
) -> VendorPolicies:
    """Parse the current policy as read from Graph (raises :class:`PolicyParseError`)."""
    raws = list(partners_raw)
    parsed = [parse_partner_policy(p) for p in raws]
    raw_by_tenant = {policy.tenant_id: raw for policy, raw in zip(parsed, raws, strict=True)}
    return VendorPolicies(
        default_raw=default_raw,
        partners_raw=raw_by_tenant,
        default=parse_default_policy(default_raw),
        partners={p.tenant_id: p for p in parsed},
    )


def merge_policy(current: Mapping[str, Any] | None, proposed: Mapping[str, Any]) -> dict[str, Any]:
    """``proposed`` over ``current`` as a PATCH would: top-level properties replaced whole."""
    merged = {k: v for k, v in (current or {}).items() if not k.startswith("@odata.")}
    lowered = {k.lower(): k for k in merged}
    for key, value in proposed.items():
        if key.startswith("@odata.") or key.lower() in _READ_ONLY:
            continue
        merged.pop(lowered.get(key.lower(), key), None)
        merged[key] = value
    return merged


def _parse_error(label: str, exc: PolicyParseError) -> ProposalError:
    path, _, problem = str(exc).partition(": ")
    if not problem:
        return ProposalError(label, str(exc))
    if " " in path:  # "default policy: ..." / "partner policy: ...": the object itself
        return ProposalError(label, problem)
    return ProposalError(label, problem, path)


def _object(proposed: ProposedPolicy) -> Mapping[str, Any]:
    raw = proposed.raw
    if not isinstance(raw, Mapping):
        raise ProposalError(
            proposed.label, "expected a JSON object (the policy as Graph returns it)"
        )
    if isinstance(raw.get("value"), list):
        raise ProposalError(
            proposed.label, "is a collection ({'value': [...]}); give one policy object"
        )
    for key in raw:
        if not isinstance(key, str) or (
            not key.startswith("@odata.") and key.lower() not in _KNOWN_PROPERTIES
        ):
            raise ProposalError(
                proposed.label,
                "is not a property of a cross-tenant access policy (check its spelling)",
                str(key),
            )
    return raw


def _proposed_default(current: VendorPolicies, proposed: ProposedPolicy) -> DefaultPolicy:
    raw = _object(proposed)
    if any(k.lower() == "tenantid" for k in raw):
        raise ProposalError(
            proposed.label,
            "a default policy has no tenantId; this looks like a partner entry",
            "tenantId",
        )
    try:
        return parse_default_policy(merge_policy(current.default_raw, raw))
    except PolicyParseError as exc:
        raise _parse_error(proposed.label, exc) from None


def _proposed_partner(
    current: VendorPolicies, tenant_id: str, proposed: ProposedPolicy
) -> PartnerPolicy:
    raw = _object(proposed)
    named = next((v for k, v in raw.items() if k.lower() == "tenantid"), None)
    if named is not None and (not isinstance(named, str) or named.strip().lower() != tenant_id):
        raise ProposalError(proposed.label, f"names tenant {named!r}, not {tenant_id}", "tenantId")
    merged = merge_policy(current.partners_raw.get(tenant_id), raw)
    merged["tenantId"] = tenant_id
    try:
        return parse_partner_policy(merged)
    except PolicyParseError as exc:
        raise _parse_error(proposed.label, exc) from None


def apply_proposal(current: VendorPolicies, proposal: Proposal) -> VendorPolicies:
    """The policy as it would be after the proposal is saved."""
    if proposal.empty:
        raise ProposalError("proposal", "propose a default policy, a partner entry, or both")
    if len(proposal.partners) > MAX_PARTNER_PROPOSALS:
        raise ProposalError("partners", f"at most {MAX_PARTNER_PROPOSALS} partner entries")
    default = current.default
    if proposal.default is not None:
        default = _proposed_default(current, proposal.default)
    partners = dict(current.partners)
    seen: set[str] = set()
    for item in proposal.partners:
        tenant = item.tenant_id.strip().lower()
        if not is_guid(tenant):
            raise ProposalError(item.label, "must be a tenant ID (GUID)", "tenantId")
        if tenant in seen:
            raise ProposalError(item.label, f"{tenant} is proposed twice", "tenantId")
        seen.add(tenant)
        if item.policy is None:
            partners.pop(tenant, None)
        else:
            partners[tenant] = _proposed_partner(current, tenant, item.policy)
    return VendorPolicies(current.default_raw, current.partners_raw, default, partners)


# ----------------------------------------------------------------------- comparison


@dataclass(frozen=True, slots=True)
class ClientTarget:
    tenant_id: str
    name: str
    domains: tuple[str, ...] = ()


class Change(StrEnum):
    NEWLY_BROKEN = "newly_broken"
    NEWLY_RECOVERED = "newly_recovered"
    CHANGED = "changed"  # findings differ, broken or not as before
    UNCHANGED = "unchanged"


def is_broken(findings: Sequence[Finding]) -> bool:
    return any(f.severity is Severity.HIGH for f in findings)


def _signature(finding: Finding) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return (finding.code.value, finding.severity.value, finding.facts)


@dataclass(frozen=True, slots=True)
class ClientOutcome:
    tenant_id: str
    name: str
    change: Change
    broken_before: bool
    broken_after: bool
    before: tuple[Finding, ...]
    after: tuple[Finding, ...]

    @property
    def added(self) -> tuple[Finding, ...]:
        old = {_signature(f) for f in self.before}
        return tuple(f for f in self.after if _signature(f) not in old)

    @property
    def removed(self) -> tuple[Finding, ...]:
        new = {_signature(f) for f in self.after}
        return tuple(f for f in self.before if _signature(f) not in new)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "name": self.name,
            "change": self.change.value,
            "brokenBefore": self.broken_before,
            "brokenAfter": self.broken_after,
            "added": [f.to_dict() for f in self.added],
            "removed": [f.code.value for f in self.removed],
            "findingsAfter": [f.to_dict() for f in self.after],
        }


def compare(
    target: ClientTarget, before: Sequence[Finding], after: Sequence[Finding]
) -> ClientOutcome:
    was, will = is_broken(before), is_broken(after)
    if will and not was:
        change = Change.NEWLY_BROKEN
    elif was and not will:
        change = Change.NEWLY_RECOVERED
    elif sorted(map(_signature, before)) != sorted(map(_signature, after)):
        change = Change.CHANGED
    else:
        change = Change.UNCHANGED
    return ClientOutcome(
        target.tenant_id, target.name, change, was, will, tuple(before), tuple(after)
    )


@dataclass(frozen=True)
class WhatIfResult:
    clients: int
    outcomes: tuple[ClientOutcome, ...]  # every client that is not UNCHANGED, by name

    def of(self, change: Change) -> tuple[ClientOutcome, ...]:
        return tuple(o for o in self.outcomes if o.change is change)

    @property
    def newly_broken(self) -> tuple[ClientOutcome, ...]:
        return self.of(Change.NEWLY_BROKEN)

    @property
    def newly_recovered(self) -> tuple[ClientOutcome, ...]:
        return self.of(Change.NEWLY_RECOVERED)

    @property
    def changed(self) -> tuple[ClientOutcome, ...]:
        return self.of(Change.CHANGED)

    def to_json(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "newlyBroken": [o.to_json() for o in self.newly_broken],
            "newlyRecovered": [o.to_json() for o in self.newly_recovered],
            "changed": [o.to_json() for o in self.changed],
            "unchanged": self.clients - len(self.outcomes),
        }


def what_if(
    clients: Iterable[ClientTarget],
    current: VendorPolicies,
    proposed: VendorPolicies,
    vendor_app_ids: Sequence[str],
    authorization: AuthorizationPolicy | None,
    *,
    only: frozenset[str] | None = None,
) -> WhatIfResult:
    """Vendor-side checks of every client, current vs proposed.

    ``only``: the tenants the proposal can affect (a partner-only proposal touches no
    other client); the rest are counted as unchanged without being evaluated.
    """

    def findings(policies: VendorPolicies, target: ClientTarget) -> list[Finding]:
        return evaluate_vendor_side(
            policies.default,
            policies.partners.get(target.tenant_id),
            target.tenant_id,
            vendor_app_ids,
            authorization,
            target.domains,
            client_name=target.name,
        )

    total = 0
    outcomes = []
    for target in clients:
        total += 1
        if only is not None and target.tenant_id not in only:
            continue
        outcome = compare(target, findings(current, target), findings(proposed, target))
        if outcome.change is not Change.UNCHANGED:
            outcomes.append(outcome)
    outcomes.sort(key=lambda o: (o.name.lower(), o.tenant_id))
    return WhatIfResult(total, tuple(outcomes))


def affected_tenants(proposal: Proposal) -> frozenset[str] | None:
    """Tenants whose result can change (None: every client, the default changes)."""
    if proposal.default is not None:
        return None
    return frozenset(p.tenant_id.strip().lower() for p in proposal.partners)


def parse_proposal_body(body: Any) -> Proposal:
    """The ``POST /api/v1/whatif`` body: ``{"default": {...}, "partners": [...]}``.

    ``partners`` items are ``{"tenantId": GUID, "policy": {...} | null}`` (null: delete
    the entry). Field names in errors follow the body (``partners[0].policy``).
    """
    if not isinstance(body, Mapping):
        raise ProposalError("body", "expected a JSON object")
    unknown = sorted(set(body) - {"default", "partners"})
    if unknown:
        raise ProposalError(unknown[0], "unknown field (expected default and/or partners)")
    default = None
    if body.get("default") is not None:
        default = ProposedPolicy(body["default"], "default")
    raw_partners = body.get("partners")
    if raw_partners is None:
        raw_partners = []
    if not isinstance(raw_partners, list):
        raise ProposalError("partners", "expected a list of {tenantId, policy}")
    if len(raw_partners) > MAX_PARTNER_PROPOSALS:
        raise ProposalError("partners", f"at most {MAX_PARTNER_PROPOSALS} partner entries")
    partners = []
    for i, item in enumerate(raw_partners):
        label = f"partners[{i}]"
        if not isinstance(item, Mapping):
            raise ProposalError(label, "expected an object {tenantId, policy}")
        extra = sorted(set(item) - {"tenantId", "policy"})
        if extra:
            raise ProposalError(label, "unknown field", extra[0])
        tenant = item.get("tenantId")
        if not isinstance(tenant, str) or not is_guid(tenant.strip()):
            raise ProposalError(label, "must be a tenant ID (GUID)", "tenantId")
        if "policy" not in item:
            raise ProposalError(label, "required (an object, or null to delete)", "policy")
        policy = item["policy"]
        partners.append(
            PartnerProposal(
                tenant.strip().lower(),
                None if policy is None else ProposedPolicy(policy, f"{label}.policy"),
                label,
            )
        )
    proposal = Proposal(default, tuple(partners))
    if proposal.empty:
        raise ProposalError("body", "propose a default policy, partner entries, or both")
    return proposal
