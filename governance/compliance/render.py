"""Readable terminal forms of compliance answers (rich renderables); the JSON forms are the data itself.

Every line is a rich ``Text``: the labels are ours (bold, red), the values are Atlas's, shown as plain text
with control characters escaped (``governance.safe_output``), so a record's ``[/bold]`` or ``ESC[2J`` is
printed, never obeyed.
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from governance.safe_output import terminal_text


def _line(label: str, text: str = "", *, flag: str = "") -> Text:
    """A bold ``label`` (ours), then ``text`` and a red ``flag`` built from record values, as plain text."""
    line = Text()
    if label:
        line.append(label, style="bold")
        if text:
            line.append(" ")
    line.append(terminal_text(text))
    if flag:
        line.append(terminal_text(flag), style="red")
    return line


def _classes(items: list[dict]) -> str:
    parts = []
    for c in items:
        extra = ", ".join(f"{k}={v}" for k, v in c.items() if k not in ("typeName", "from") and v)
        parts.append(f"{c['typeName']}({extra})" if extra else c["typeName"])
    return ", ".join(parts)


def trace_tree(chain: dict) -> Tree:
    """deployment -> deploy process -> build -> registry copy (files) / staging / training data -> people."""
    dep, build, copy = chain["deployment"], chain["build"], chain["registryCopy"]
    outcome = f"{dep['outcome']}" + (f": {dep['failureReason']}" if dep.get("failureReason") else "")
    root = Tree(_line("deployment", f"{dep['qualifiedName']}  ({dep['guid']})"))
    root.add(_line("", f"{dep['modelName']} {dep['modelVersion']} on {dep['targetKind']}://{dep['targetDetail']}"
                       f"  status={dep['status']}  outcome={outcome}"))
    root.add(_line("", f"deployed {dep['deployedTime']}  stopped {dep['stoppedTime'] or '-'}  by {dep['deployedBy']}"
                       f"  endpoint {dep['modelEndpointURL'] or '-'}"))
    if dep["classifications"] or dep["propagatedClassifications"]:
        root.add(_line("", f"classifications: {_classes(dep['classifications'] + dep['propagatedClassifications'])}"))
    if chain["deployProcess"]:
        proc = chain["deployProcess"]
        root.add(_line("deploy process", f"{proc['qualifiedName']}  user={proc['userName']}  "
                                         f"run={proc['orchestratorRunId']}  {proc['startTime']} -> {proc['endTime'] or '-'}"))
    b = root.add(_line("build", f"{build['qualifiedName']}  ({build['guid']})  {build['modelType'] or ''}"
                                f" {build['framework'] or ''}  registered {build['registeredTime']}"))
    signer = build.get("signer")
    checked = f"  (this deploy: {dep['signatureCheck']})" if dep.get("signatureCheck") else ""
    who = (f"certificate {signer['subject']} ({signer['fingerprint']})" if signer and signer.get("subject")
           else f"{signer['kind']} {signer['fingerprint']}" if signer else "(unsigned)")
    b.add(_line("signed by", who + checked))
    r = b.add(_line("registry copy", f"{copy['uri']}  [{copy['typeName']}]"))
    for f in copy["files"]:
        mark = "  (executable)" if f["path"] == copy["executable"] else ""
        r.add(_line("", f"{f['sha256']}  {f['path']}{mark}"))
    staging = chain["staging"]
    b.add(_line("staging repo", f"{staging['repository']}  commit {staging['commit'] or '-'}"))
    training = chain["training"]
    t = b.add(_line("training", f"{training['process']['qualifiedName']}  code {training['process']['codeUri']}"
                    if training["process"] else "(no training data recorded)"))
    for ds in training["datasets"]:
        t.add(_line("", f"{ds['qualifiedName']}  [{ds['typeName']}]",
                    flag=f"  SENSITIVE: {ds['sensitive']}" if ds["sensitive"] else ""))
    if chain.get("scoringRuns"):
        scoring = chain["scoringRuns"]
        s = root.add(_line("scoring runs", f"{scoring['total']} (newest first)"))
        for run in scoring["runs"][:10]:
            why = f": {run['failureReason']}" if run.get("failureReason") else ""
            s.add(_line("", f"{run['startTime']}  {run['outcome']}{why}  rows {run['rowsOut'] if run['rowsOut'] is not None else '-'}"
                            f"  {', '.join(run['inputs']) or '-'} -> {', '.join(run['outputs']) or run['outputUri'] or '-'}"))
    changes = root.add(_line("record changes", "(Atlas audit)"))
    for change in chain["recordChanges"]:
        changes.add(_line("", f"{change['time']}  {change['action']}  by {change['user']}"
                              + (f"  status={change['status']}" if change["status"] else "")))
    people = chain["people"]
    proof = f" ({dep['deployedByProof']})" if dep.get("deployedByProof") else ""
    root.add(_line("people", f"owner {people['owner']} ({people['ownerLob']}), deployed by {people['deployedBy']}{proof}, "
                             f"trained by {people['trainedBy'] or '-'}, recorded in Atlas by {people['recordedBy'] or '-'}"))
    return root
