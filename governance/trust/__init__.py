"""Who produced, deployed and approved: signed model versions and the trust policy (``signing``), and signed
approvals bound to the bytes (``approvals``), in OpenSSF model-signing and in-toto/DSSE formats (issue 21)."""
