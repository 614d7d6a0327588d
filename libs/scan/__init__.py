"""The source scanner: guarded extraction, the controls catalog and scores of one MCP version.

It runs inside the sandbox (services/sandbox/scanning.py starts `python -S scan.py`), with the
standard library, this package, libs/common's pure modules (osv, poisoning) and the pinned
analysers of the service's site-packages (detect-secrets, bandit, license-expression, packaging).
"""
