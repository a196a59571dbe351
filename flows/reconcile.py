"""Prefect flow ``reconcile``: make targets serve what Atlas records, on a schedule (see governance.deploy.fleet).

    python -m flows.register --flow reconcile --pool modelgov --name nightly --cron "*/30 * * * *"

Each run leaves a Markdown artifact listing every finding and what was done about it.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from governance.deploy.fleet import reconcile_targets


def findings_markdown(report) -> str:
    lines = [f"# Reconcile: {len(report.findings)} finding(s)", "", f"Targets: {', '.join(report.checked)}", "",
             "| target | finding | model | version | action | detail | Atlas |", "|---|---|---|---|---|---|---|"]
    for f in report.findings:
        lines.append(f"| {f.target} | {f.kind} | {f.model} | {f.version or ''} | {f.action} | "
                     f"{f.detail.replace('|', '/')} | {f.atlas or ''} |")
    return "\n".join(lines) + "\n"


@flow(name="reconcile", log_prints=False, validate_parameters=True)
def reconcile(targets: list[str] | None = None, registry: str | None = None, atlas_url: str | None = None,
              namespace: str | None = None, config: str | None = None, dry_run: bool = False) -> list[dict]:
    """Reconcile the named targets (default: every target in modelgov.yaml); return the findings."""
    log = get_run_logger()
    report = reconcile_targets(targets, registry, atlas_url, namespace, config, dry_run=dry_run,
                               run_id=str(flow_run.id or "") or None)
    for f in report.findings:
        log.info("%s %s %s %s: %s -> %s", f.target, f.kind, f.model, f.version or "", f.detail, f.action)
    create_markdown_artifact(markdown=findings_markdown(report), key="reconcile",
                             description=f"modelgov reconcile: {len(report.findings)} finding(s)")
    if report.failed:
        raise RuntimeError("reconcile could not fix every finding: " + "; ".join(
            f"{f.model} {f.version}: {f.detail}" for f in report.findings if f.action == "failed"))
    return [f.to_dict() for f in report.findings]
