"""modelgov: governed model deployments.

A staged model repository is validated, published to an immutable registry, deployed from the
registered bytes to a serving target, and recorded in Apache Atlas with lineage. This package is
the library (``deploy/``, ``staging/``, ``registries/``, ``targets/``, ``atlas/``, ``compliance/``); it never
imports Prefect or ``flows/`` so it can be reused and tested on its own. ``cli/`` sits on top of both.
"""

__version__ = "0.1.0"
