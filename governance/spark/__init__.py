"""Batch scoring on Apache Spark (issue 24): the binding of a scoring job to a registry version, the Spark
session, and the scoring run that applies the bound model to a table and records its lineage.

PySpark is an optional extra (``model-governance[spark]``); nothing here imports it until a Spark target or a
scoring run is used, and then a missing PySpark is a ConfigError saying what to install.
"""
