"""``modelgov score DEPLOYMENT | --model NAME --target T``: one batch scoring run of a Spark deployment
(``governance.deploy.scoring_run``), recorded in Atlas with its input and output versions."""

from __future__ import annotations

import argparse

from governance.cli.common import EXIT_FAILED, EXIT_OK, atlas_opt, config_opt, print_json, say
from governance.errors import ConfigError, GovernanceError
from governance.spark.errors import error_reason


def cmd_score(args: argparse.Namespace) -> int:
    from governance.atlas.client import AtlasClient
    from governance.config import load_config
    from governance.deploy.scoring_run import score
    from governance.targets import get_target
    from governance.targets.spark import SparkTarget

    config = load_config(args.config)
    client = AtlasClient.from_env(args.atlas or config.atlas_url)
    try:
        if args.deployment:
            from governance.compliance.trace import load_deployment

            attrs = load_deployment(client, args.deployment)["entity"].get("attributes") or {}
            model, target_uri = attrs.get("modelName"), attrs.get("targetUri")
        elif args.model and args.target:
            model, target_uri = args.model, config.target(args.target).uri
        else:
            raise ConfigError("give a DEPLOYMENT (guid or qualifiedName), or --model NAME with --target T")
        target = get_target(str(target_uri))
        if not isinstance(target, SparkTarget):
            raise ConfigError(f"{target_uri} is a {target.kind} target: only Spark deployments are scored")
        try:
            run = score(target, str(model), client, input_uri=args.input, output_uri=args.output,
                        namespace=args.namespace or config.namespace or "modelgov")
        except GovernanceError:
            raise
        except Exception as exc:  # noqa: BLE001 - Spark's own errors: the run is recorded failed, say why
            say(f"modelgov: scoring {model} failed: {error_reason(exc)}", stderr=True)
            return EXIT_FAILED
    finally:
        client.close()
    if args.json:
        print_json(run.to_dict())
    else:
        say(f"scored {run.rows_in} rows of {run.input} with {run.model} {run.version} into {run.output} "
            f"({run.rows_out} rows); Atlas scoring run {run.atlas_guid}")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="run the Spark scoring job of a deployment once, and record it in Atlas")
    p.add_argument("deployment", nargs="?", default=None, help="the deployment's guid or qualifiedName")
    p.add_argument("--model", default=None, help="with --target: the model whose bound version scores")
    p.add_argument("--target", default=None, help="a spark:// target URI or a name from modelgov.yaml")
    p.add_argument("--input", default=None, help="the table to score (default: the target's input=)")
    p.add_argument("--output", default=None, help="where to write it (default: the target's output=); {run_id} "
                                                  "and {date} are filled in")
    p.add_argument("--namespace", default=None)
    p.add_argument("--json", action="store_true")
    atlas_opt(p)
    config_opt(p)
    p.set_defaults(func=cmd_score)
