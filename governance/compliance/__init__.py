"""Compliance answers from Atlas, one command each: search, history (``--at``), trace, verify, report.

Everything here reads Atlas through its documented v2 endpoints only (basic search with entityFilters,
entity by guid / unique attribute, lineage, classifications), pages as the real server does
(limit/offset), and never writes to Atlas. The CLI wiring lives in ``governance.cli.compliance``.
"""
