"""The ``modelgov`` command line: the top layer, one module per command group (``deploy``, ``compliance``,
``operations``, ``registry``, ``outbox``, ``atlas``, ``doctor``), ``common`` for exit codes, options and output,
and ``main``. It imports the library and ``flows/`` (the latter only when a command runs a flow); nothing below
imports it."""

from governance.cli.main import main

__all__ = ["main"]
