"""Batch scoring on Apache Spark (issue 24): the binding of a scoring job to a registry version, the Spark
session, applying a bound model to a table, and the job's storage (Hadoop paths, their versions). The scoring
run that records its lineage in Atlas is ``governance.deploy.scoring_run``, beside the other record writers.

PySpark is an optional extra (``model-governance[spark]``); nothing here imports it until a Spark target or a
scoring run is used, and then a missing PySpark is a ConfigError saying what to install.
"""
