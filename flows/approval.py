"""The approval gate of deploys to a target marked ``environment: production`` in modelgov.yaml: the flow run pauses with a typed input until someone approves
or rejects it (Prefect UI form, or ``modelgov approve RUN_ID --approver NAME [--reject --reason TEXT]``).

Open-source Prefect does not record who resumed a run, so a typed approver is only a name. Where the trust
policy names approvers, the decision must be signed (``modelgov approve RUN_ID --key PATH``): the run
publishes what it asks approval for (``approval-subject``: version, content digest, target, environment,
run) as a flow run input, the CLI signs exactly that (``governance.trust.approvals``), and the saga verifies it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from prefect.input.actions import create_flow_run_input, read_flow_run_input
from prefect.runtime import flow_run

from governance.deploy.record import ApprovalDecision
from governance.errors import ConfigError, GovernanceError

APPROVAL_KEY = "approval"
SUBJECT_KEY = "approval-subject"
DEFAULT_APPROVAL_TIMEOUT = 24 * 3600
POLL_SECONDS = 2


class Approval(RunInput):
    """What the approver fills in. ``approver`` and ``approved`` have no defaults: they must be given."""

    approver: str
    approved: bool
    reason: str = ""
    statement: str = ""  # a signed approval (DSSE envelope, governance.trust.approvals); empty for a typed one


def await_approval(what: str, timeout: int, subject: dict | None = None) -> ApprovalDecision:
    """Pause this flow run until approved, rejected, or ``timeout`` seconds pass (then: timed_out). ``subject``
    (what exactly is to be approved) is published first, for ``modelgov approve --key`` to sign."""
    log = get_run_logger()
    if subject is not None:
        create_flow_run_input(key=SUBJECT_KEY, value=subject)
    log.info("waiting up to %ss for approval of %s: approve in the Prefect UI or run `modelgov approve %s "
             "--approver NAME` (add --reject --reason TEXT to reject)", timeout, what, flow_run.id)
    try:
        answer = pause_flow_run(wait_for_input=Approval.with_initial_data(description=f"Approve {what}?"),
                                timeout=timeout, poll_interval=POLL_SECONDS, key=APPROVAL_KEY)
    except FlowPauseTimeout:
        log.warning("nobody approved %s within %ss: nothing is deployed", what, timeout)
        return ApprovalDecision("timed_out", None, datetime.now(UTC), f"no decision within {timeout}s")
    received = datetime.now(UTC)
    approver = answer.approver.strip()
    if not approver:
        return ApprovalDecision("rejected", None, received, "approval without an approver name is refused")
    decision = ApprovalDecision("approved" if answer.approved else "rejected", approver, received,
                                answer.reason.strip(), statement=answer.statement or None)
    log.info("%s %s by %s%s", what, decision.decision, approver, f": {decision.reason}" if decision.reason else "")
    return decision


def approval_subject(run_id: str) -> dict:
    """What the paused run ``run_id`` asks approval for (published by ``await_approval``)."""
    subject = read_flow_run_input(SUBJECT_KEY, flow_run_id=_run_uuid(run_id))
    if not isinstance(subject, dict):
        raise GovernanceError(f"flow run {run_id} published no approval subject (a batch, or a run started "
                              "before signed approvals): it cannot take a signed approval")
    return subject


def _run_uuid(run_id: str) -> UUID:
    try:
        return UUID(run_id)
    except ValueError as exc:
        raise ConfigError(f"{run_id!r} is not a flow run id") from exc


def decide(run_id: str, approver: str, approved: bool, reason: str = "", statement: str = "") -> None:
    """Resume a paused run with the decision (what ``modelgov approve`` does)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    if not approver.strip():
        raise ConfigError("--approver NAME is required")
    run_uuid = _run_uuid(run_id)
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(run_uuid)
        except ObjectNotFound as exc:
            raise GovernanceError(f"flow run {run_id} does not exist on {client.api_url}") from exc
    if not run.state or not run.state.is_paused():
        raise GovernanceError(f"flow run {run_id} is not waiting for approval (state: "
                              f"{run.state.name if run.state else 'unknown'})")
    try:
        resume_flow_run(run_uuid, run_input={"approver": approver, "approved": approved, "reason": reason,
                                             "statement": statement})
    except FlowPauseTimeout as exc:
        raise GovernanceError(f"flow run {run_id}: the approval window has closed") from exc
