"""``xtap-watch reinvite ...`` and ``xtap-watch reviews ...``: operators' guest work.

* ``reinvite request (--user-id ID | --email ADDRESS) --reason TEXT`` queues a reset
  exactly as ``POST /api/v1/reinvites`` does (same validation, eligibility, duplicate
  window, ledger); the requester is recorded as ``cli:<OS user>`` unless ``--as`` says
  otherwise.
* ``reinvite status JOB`` prints the job and its step history.
* ``reviews ensure (--tenant ID | --all)`` queues "ensure access review" jobs (``--inline``
  runs them in this process instead, for a machine without a Functions host).
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from typing import Any

from shared.entrypoints.cli_app import GRAPH, STORAGE, run_with_app
from shared.entrypoints.cli_common import Column, Progress, emit, render_pairs, render_table

JOB_COLUMNS = (
    Column("Job", lambda j: j.get("jobId")),
    Column("Client", lambda j: j.get("client"), 28),
    Column("State", lambda j: j.get("state")),
    Column("Review", lambda j: j.get("displayName"), 40),
)


def _job_table(job: dict[str, Any]) -> str:
    client = job.get("client")
    pairs = [
        ("Job", job.get("jobId")),
        ("State", job.get("state")),
        ("Guest", job.get("email") or job.get("userId")),
        ("Client", client.get("name") if isinstance(client, dict) else client),
        ("Requested by", job.get("requestedBy")),
        ("Requested", job.get("requestedAt")),
        ("Updated", job.get("updatedAt")),
    ]
    error = job.get("error")
    if error:
        pairs.append(("Error", error.get("message") if isinstance(error, dict) else error))
    steps = [f"{s.get('at', '')[:19]}  {s.get('state')}  {s.get('detail') or ''}".rstrip()
             for s in job.get("steps", [])]
    return render_pairs(pairs) + ("\n\nSteps:\n  " + "\n  ".join(steps) if steps else "")


def _print(args: argparse.Namespace, value: Any) -> None:
    if isinstance(value, list):
        emit(args, value, table=lambda v: render_table(v, JOB_COLUMNS) if v else "(no jobs)")
    else:
        emit(args, value, table=_job_table)


def _requester(args: argparse.Namespace) -> str:
    if args.requested_by:
        return str(args.requested_by)[:256]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"[:256]


def _request(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.domain.reinvite import RequestInvalid, is_strict_email, parse_reinvite_request
    from shared.services.reinvites import ReinviteRefused, job_view, request_reinvite

    raw: dict[str, Any] = {"reason": args.reason, "sendInvitationMessage": args.send_message}
    if args.user_id is not None:
        raw["userId"] = args.user_id
    if args.email is not None:
        raw["email"] = args.email
    if args.redirect_url is not None:
        raw["redirectUrl"] = args.redirect_url
    try:
        request = parse_reinvite_request(raw)
    except RequestInvalid as exc:
        flag = {
            "userId": "--user-id",
            "email": "--email",
            "reason": "--reason",
            "redirectUrl": "--redirect-url",
        }.get(exc.field, exc.field)
        raise CliError(f"{flag}: {exc.message}") from exc
    requester = _requester(args)

    async def use(app: Any) -> dict[str, Any]:
        try:
            outcome = await request_reinvite(
                app,
                request,
                requester,
                datetime.now(UTC),
                origin="cli",
                requester_email=requester if is_strict_email(requester) else None,
            )
        except ReinviteRefused as exc:
            raise CliError(exc.message) from exc
        return job_view(outcome.job) | {"existing": outcome.existing}

    _print(args, run_with_app(use, needs=(STORAGE, GRAPH)))
    return 0


def _status(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.domain.reinvite import is_guid
    from shared.services.reinvites import get_job, job_view

    if not is_guid(args.job_id):
        raise CliError(f"job_id: not a job ID (GUID): {args.job_id!r}")

    async def use(app: Any) -> dict[str, Any]:
        job = await get_job(app, args.job_id.lower())
        if job is None:
            raise CliError(f"no re-invite job {args.job_id}")
        return job_view(job)

    _print(args, run_with_app(use))
    return 0


def _ensure(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.domain.messages import EnsureAccessReview
    from shared.domain.reinvite import is_guid
    from shared.services.access_reviews import (
        ClientNotRegistered,
        NoReviewers,
        ensure_access_review,
        request_access_review,
        review_job_view,
        schedule_access_reviews,
    )

    if args.tenant is not None and not is_guid(args.tenant):
        raise CliError(f"--tenant: not a tenant ID (GUID): {args.tenant!r}")
    requester = _requester(args)

    async def use(app: Any) -> list[dict[str, Any]]:
        from shared.adapters.job_ledger import JobLedger

        now = datetime.now(UTC)
        if args.all:
            scheduled = await schedule_access_reviews(app, now, requested_by=requester)
            if scheduled.skipped:
                raise CliError(scheduled.skipped)
            job_ids = [j["jobId"] for j in scheduled.jobs]
        else:
            try:
                requested = await request_access_review(app, args.tenant, requester, now)
            except (ClientNotRegistered, NoReviewers) as exc:
                raise CliError(str(exc)) from exc
            job_ids = [requested.job_id]
        ledger = JobLedger(app.tables)
        out = []
        progress = Progress("ensured" if args.inline else "queued", len(job_ids))
        try:
            for done, job_id in enumerate(job_ids, start=1):
                job = await ledger.get_access_review(job_id)
                if job is None:
                    continue
                if args.inline:
                    message = EnsureAccessReview(
                        tenant_id=job.tenant_id, requested_by=job.requested_by, job_id=job.job_id
                    )
                    job = (await ensure_access_review(app, message, datetime.now(UTC))).job
                out.append(review_job_view(job))
                progress.update(done, job.client_name or "")
        finally:
            progress.done()
        return out

    _print(args, run_with_app(use, needs=(STORAGE, GRAPH) if args.inline else (STORAGE,)))
    return 0


def register(subparsers: Any) -> None:
    reinvite = subparsers.add_parser(
        "reinvite",
        help="invitation redemption resets of client guests",
        description="Reset a guest's invitation redemption (the guest keeps its object ID,\n"
        "groups and app assignments) and follow the job.",
    )
    sub = reinvite.add_subparsers(dest="reinvite_command", required=True, metavar="COMMAND")

    request = sub.add_parser(
        "request",
        help="queue a re-invite of a registered client's guest",
        epilog="example:\n  xtap-watch reinvite request --email jane.doe@contoso.com \\\n"
        '      --reason "new phone, MFA lost"',
    )
    who = request.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the guest's object ID in the vendor tenant")
    who.add_argument("--email", help="the guest's mail address")
    request.add_argument("--reason", required=True, help="why (recorded and alerted)")
    request.add_argument(
        "--send-message", action="store_true", help="have Entra e-mail a fresh invitation"
    )
    request.add_argument("--redirect-url", help="https:// landing page after redemption")
    request.add_argument("--as", dest="requested_by", help="requester recorded in the ledger")
    request.set_defaults(handler=_request)

    status = sub.add_parser(
        "status",
        help="a re-invite job and its steps",
        epilog="example:\n  xtap-watch reinvite status 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
    )
    status.add_argument("job_id", metavar="JOB_ID")
    status.set_defaults(handler=_status)

    reviews = subparsers.add_parser(
        "reviews",
        help="guest access reviews of clients",
        description="Ensure the recurring access review of each client's guests.",
    )
    rsub = reviews.add_subparsers(dest="reviews_command", required=True, metavar="COMMAND")
    ensure = rsub.add_parser(
        "ensure",
        help="ensure the recurring guest review of one client or of every client",
        epilog="examples:\n"
        "  xtap-watch reviews ensure --tenant 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\n"
        "  xtap-watch reviews ensure --all --inline",
    )
    which = ensure.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", help="one client's tenant ID")
    which.add_argument("--all", action="store_true", help="every registered client")
    ensure.add_argument(
        "--inline", action="store_true", help="run the jobs here instead of queueing them"
    )
    ensure.add_argument("--as", dest="requested_by", help="requester recorded in the ledger")
    ensure.set_defaults(handler=_ensure)
