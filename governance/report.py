"""Human-readable reports of runs: one Markdown page per run (a Prefect artifact), one row per model.

Built only from the summary dicts ``pipeline.summary`` returns (and ``failed_summary`` for runs that never
got that far), so what an operator reads in the Prefect UI is what the run recorded in Atlas.
"""

from __future__ import annotations

import re


def failed_summary(source: str, step: str, error: str, partial: dict | None = None) -> dict:
    """The summary of a run that failed; keeps whatever the run knew (model, registry) when it knew it."""
    out = dict(partial or {})
    out.update(status="failed", source=source, step=step, error=error)
    out.setdefault("model", {"name": None, "version": None})
    return out


def artifact_key(prefix: str, name: str | None) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "unknown").lower()).strip("-") or "unknown"
    return f"{prefix}-{slug}"[:100]


def _cell(value: object) -> str:
    return "–" if value in (None, "") else str(value).replace("|", "\\|").replace("\n", " ")


def _guid(summary: dict, role: str) -> str | None:
    return ((summary.get("atlas") or {}).get(role) or {}).get("guid")


def row(summary: dict) -> dict:
    """One flat row per model: what the batch table, ``--json`` and the Markdown report show."""
    model = summary.get("model") or {}
    target = summary.get("target") or {}
    return {
        "model": model.get("name"), "version": model.get("version"), "status": summary.get("status"),
        "target": f"{target.get('kind')}://{target.get('detail')}" if target else None,
        "endpoint": summary.get("endpoint"), "registry_uri": summary.get("registry_uri"),
        "atlas_deployment_guid": _guid(summary, "deployment"), "atlas_build_guid": _guid(summary, "build"),
        "source": summary.get("source") or (summary.get("staging") or {}).get("source"),
        "error": summary.get("error") or summary.get("failure"),
        "step": summary.get("step"),
    }


def deployment_markdown(summary: dict) -> str:
    """The Markdown artifact of one deploy-model run."""
    r = row(summary)
    lines = [f"# {_cell(r['model'])} {_cell(r['version'])}: {r['status']}", ""]
    lines += ["| | |", "|---|---|",
              f"| target | {_cell(r['target'])} |", f"| endpoint | {_cell(r['endpoint'])} |",
              f"| registry | {_cell(r['registry_uri'])} |", f"| source | {_cell(r['source'])} |"]
    if summary.get("staging", {}).get("commit"):
        lines.append(f"| commit | {_cell(summary['staging']['commit'])} |")
    for role in ("project", "build", "deployment", "deploy_process"):
        entity = (summary.get("atlas") or {}).get(role)
        if entity:
            lines.append(f"| Atlas {role.replace('_', ' ')} | `{entity['guid']}` {_cell(entity['qualifiedName'])} |")
    if r["error"]:
        lines.append(f"| failed{' at ' + r['step'] if r['step'] else ''} | {_cell(r['error'])} |")
    for name in summary.get("superseded") or []:
        lines.append(f"| marked stopped | {_cell(name)} |")
    if summary.get("approval"):
        approval = summary["approval"]
        lines.append(f"| approval | {_cell(approval.get('decision'))} by {_cell(approval.get('approver'))} "
                     f"at {_cell(approval.get('time'))} {_cell(approval.get('reason'))} |")
    return "\n".join(lines) + "\n"


def batch_markdown(summaries: list[dict]) -> str:
    """The Markdown artifact of a batch run: one row per model."""
    ok = sum(1 for s in summaries if s.get("status") in ("deployed", "unchanged"))
    lines = [f"# Batch deploy: {ok} of {len(summaries)} deployed", "",
             "| model | version | status | target | registry | Atlas deployment | error |",
             "|---|---|---|---|---|---|---|"]
    for s in summaries:
        r = row(s)
        lines.append(" | ".join(["", _cell(r["model"]), _cell(r["version"]), _cell(r["status"]), _cell(r["target"]),
                                 _cell(r["registry_uri"]), _cell(r["atlas_deployment_guid"]),
                                 _cell(r["error"]), ""]).strip())
    return "\n".join(lines) + "\n"
