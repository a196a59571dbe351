"""The Prefect artifacts of a run: one Markdown page per deploy, one table per batch, built only from the
runs' DeploySummary values, so what an operator reads in the Prefect UI is what the run recorded in Atlas."""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact

from governance.deploy.summary import DeploySummary
from governance.safe_output import markdown_code, markdown_text


def artifact_key(prefix: str, name: str | None) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "unknown").lower()).strip("-") or "unknown"
    return f"{prefix}-{slug}"[:100]


def _cell(value: object) -> str:
    """A run value as Markdown text (Prefect renders it): no links, images, HTML or extra table cells."""
    return "–" if value in (None, "") else markdown_text(value)


def deployment_markdown(summary: DeploySummary) -> str:
    """The Markdown artifact of one deploy-model run."""
    r = summary.row()
    lines = [f"# {_cell(r['model'])} {_cell(r['version'])}: {_cell(r['status'])}", ""]
    lines += ["| | |", "|---|---|",
              f"| target | {_cell(r['target'])} |", f"| endpoint | {_cell(r['endpoint'])} |",
              f"| registry | {_cell(r['registry_uri'])} |", f"| source | {_cell(r['source'])} |"]
    if summary.staging_commit:
        lines.append(f"| commit | {_cell(summary.staging_commit)} |")
    for role in ("project", "build", "deployment", "deploy_process"):
        entity = (summary.atlas or {}).get(role)
        if entity:
            lines.append(f"| Atlas {role.replace('_', ' ')} | {markdown_code(entity['guid'])} {_cell(entity['qualifiedName'])} |")
    if r["error"]:
        lines.append(f"| failed{' at ' + _cell(r['step']) if r['step'] else ''} | {_cell(r['error'])} |")
    for name in summary.superseded:
        lines.append(f"| marked stopped | {_cell(name)} |")
    if summary.approval:
        approval = summary.approval
        lines.append(f"| approval | {_cell(approval.get('decision'))} by {_cell(approval.get('approver'))} "
                     f"at {_cell(approval.get('time'))} {_cell(approval.get('reason'))} |")
    return "\n".join(lines) + "\n"


def batch_markdown(summaries: list[DeploySummary]) -> str:
    """The Markdown artifact of a batch run: one row per model."""
    ok = sum(1 for s in summaries if s.succeeded)
    lines = [f"# Batch deploy: {ok} of {len(summaries)} deployed", "",
             "| model | version | status | target | registry | Atlas deployment | error |",
             "|---|---|---|---|---|---|---|"]
    for s in summaries:
        r = s.row()
        lines.append(" | ".join(["", _cell(r["model"]), _cell(r["version"]), _cell(r["status"]), _cell(r["target"]),
                                 _cell(r["registry_uri"]), _cell(r["atlas_deployment_guid"]),
                                 _cell(r["error"]), ""]).strip())
    return "\n".join(lines) + "\n"


def publish_deployment(summary: DeploySummary) -> None:
    """Leave a Markdown artifact on the run: what was deployed where, the registry copy, the Atlas guids."""
    create_markdown_artifact(markdown=deployment_markdown(summary), key=artifact_key("deploy", summary.model_name),
                             description=f"modelgov deploy: {summary.status}")


def publish_batch(summaries: list[DeploySummary]) -> None:
    create_markdown_artifact(markdown=batch_markdown(summaries), key="deploy-batch",
                             description=f"modelgov batch deploy of {len(summaries)} models")
