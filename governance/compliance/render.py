"""Readable terminal forms of compliance answers (rich renderables); the JSON forms are the data itself."""

from __future__ import annotations

from rich.tree import Tree


def _classes(items: list[dict]) -> str:
    parts = []
    for c in items:
        extra = ", ".join(f"{k}={v}" for k, v in c.items() if k not in ("typeName", "from") and v)
        parts.append(f"{c['typeName']}({extra})" if extra else c["typeName"])
    return ", ".join(parts)


def trace_tree(chain: dict) -> Tree:
    """deployment -> deploy process -> build -> registry copy (files) / staging / training data -> people."""
    dep, build, copy = chain["deployment"], chain["build"], chain["registryCopy"]
    outcome = dep["outcome"] + (f": {dep['failureReason']}" if dep.get("failureReason") else "")
    root = Tree(f"[bold]deployment[/] {dep['qualifiedName']}  ({dep['guid']})")
    root.add(f"{dep['modelName']} {dep['modelVersion']} on {dep['targetKind']}://{dep['targetDetail']}"
             f"  status={dep['status']}  outcome={outcome}")
    root.add(f"deployed {dep['deployedTime']}  stopped {dep['stoppedTime'] or '-'}  by {dep['deployedBy']}"
             f"  endpoint {dep['modelEndpointURL'] or '-'}")
    if dep["classifications"] or dep["propagatedClassifications"]:
        root.add(f"classifications: {_classes(dep['classifications'] + dep['propagatedClassifications'])}")
    if chain["deployProcess"]:
        proc = chain["deployProcess"]
        root.add(f"[bold]deploy process[/] {proc['qualifiedName']}  user={proc['userName']}  "
                 f"run={proc['orchestratorRunId']}  {proc['startTime']} -> {proc['endTime'] or '-'}")
    b = root.add(f"[bold]build[/] {build['qualifiedName']}  ({build['guid']})  {build['modelType'] or ''}"
                 f" {build['framework'] or ''}  registered {build['registeredTime']}")
    r = b.add(f"[bold]registry copy[/] {copy['uri']}  [{copy['typeName']}]")
    for f in copy["files"]:
        mark = "  (executable)" if f["path"] == copy["executable"] else ""
        r.add(f"{f['sha256']}  {f['path']}{mark}")
    staging = chain["staging"]
    b.add(f"[bold]staging repo[/] {staging['repository']}  commit {staging['commit'] or '-'}")
    training = chain["training"]
    t = b.add("[bold]training[/]" + (f" {training['process']['qualifiedName']}  code {training['process']['codeUri']}"
                                     if training["process"] else " (no training data recorded)"))
    for ds in training["datasets"]:
        flag = f"  [red]SENSITIVE: {ds['sensitive']}[/]" if ds["sensitive"] else ""
        t.add(f"{ds['qualifiedName']}  [{ds['typeName']}]{flag}")
    changes = root.add("[bold]record changes[/] (Atlas audit)")
    for change in chain["recordChanges"]:
        changes.add(f"{change['time']}  {change['action']}  by {change['user']}"
                    + (f"  status={change['status']}" if change["status"] else ""))
    people = chain["people"]
    root.add(f"[bold]people[/] owner {people['owner']} ({people['ownerLob']}), deployed by {people['deployedBy']}, "
             f"trained by {people['trainedBy'] or '-'}, recorded in Atlas by {people['recordedBy'] or '-'}")
    return root
