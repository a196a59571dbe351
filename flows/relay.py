"""Push relay: a model owner's git hook or CI step announces a pushed staged repo to the shared Prefect server.

    python -m flows.relay git+https://git.corp/models/churn.git --ref v3     (or: modelgov notify-push ...)

It emits the event ``modelgov.staging.pushed`` (resource ``modelgov.source.<slug>``, payload ``source``,
``ref``, ``repository``); the automation ``python -m flows.register --on-push`` creates turns it into a
``deploy-model`` run with the deployment's own target and registry. Webhooks are Prefect Cloud only, so a
relay is how open-source Prefect hears about pushes. Sources carrying credentials are refused: events are
stored and shown in the UI.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from governance.errors import ConfigError, GovernanceError
from governance.secrets import refuse_credentials
from governance.staging.intake import parse_git_source

PUSH_EVENT = "modelgov.staging.pushed"
RESOURCE_PREFIX = "modelgov.source."


def pinned_source(source: str, ref: str | None) -> str:
    """``git+URL`` plus a ref becomes ``git+URL@REF`` (what the flow fetches); other sources stay as given."""
    git = parse_git_source(source)
    if not ref or git is None:
        return source
    return f"git+{git[0]}@{ref}"


def resource_id(source: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", source.split("://", 1)[-1]).strip("-")[:200]
    return RESOURCE_PREFIX + (slug or "unknown")


def notify_push(source: str, ref: str | None = None) -> dict:
    """Emit the push event and wait until it has been sent; return what was sent."""
    refuse_credentials(source, "source")
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError("notify-push needs PREFECT_API_URL: the shared Prefect server whose automation deploys")
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    payload = {"source": pinned_source(source, ref), "ref": ref or "", "repository": source}
    event = emit_event(event=PUSH_EVENT, resource={"prefect.resource.id": resource_id(source),
                                                   "prefect.resource.name": source}, payload=payload)
    EventsWorker.drain_all()  # otherwise the event waits ~10 s in the background queue, or is lost at exit
    if event is None:
        raise ConfigError("Prefect did not emit the event (is PREFECT_API_URL reachable?)")
    return {"event": PUSH_EVENT, "id": str(event.id), **payload}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.relay", description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("--ref", default=None, help="the pushed branch, tag or commit")
    args = parser.parse_args(argv)
    try:
        sent = notify_push(args.source, args.ref)
    except ConfigError as exc:
        print(f"modelgov notify-push: {exc}", file=sys.stderr)
        return 2
    except GovernanceError as exc:
        print(f"modelgov notify-push: {exc}", file=sys.stderr)
        return 1
    print(f"sent {sent['event']} for {sent['source']} (event {sent['id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
