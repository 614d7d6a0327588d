"""The sandbox service app."""

from pathlib import Path

from starlette.applications import Starlette

from libs.common.app import build_app
from services.sandbox.settings import SandboxSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: SandboxSettings) -> Starlette:
    """Build the sandbox app."""
    return build_app(settings, [], migrations=MIGRATIONS_DIR)
