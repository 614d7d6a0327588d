"""The conformance tests run on the end-to-end stack (five services behind nginx)."""

from tests.e2e.conftest import e2e_stack

__all__ = ["e2e_stack"]
