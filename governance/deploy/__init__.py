"""The whole deploy, free of Prefect, and the only writer of deployment records.

Read it top-down, as a deploy runs:
- ``request``: what the operator asked for, resolved once (names -> URIs, credentials refused);
- ``saga``: the step order (validate, preflight, publish, approval, governed deploy) with hooks for an
  orchestrator's tasks, approval gate and concurrency slot;
- ``governed``: one deploy under the target's lock, keeping Atlas's ``deployed`` equal to what it serves;
- ``record``: the DeploymentRecord every Atlas entity is built from; ``entities``/``datasets``/``payload``:
  that record as Atlas entities, one bulk payload;
- ``ledger``: the one writer of records, with the durable ``outbox`` behind it for Atlas outages;
- ``summary``: the typed DeploySummary of a run; ``release``: what a target deploys, from a staged repo or
  from the registry alone; ``fleet``: reconcile, rollback and undeploy, through the same governed deploy;
- ``interrupts``: SIGTERM/SIGINT inside a deploy become a compensated failure.
"""
