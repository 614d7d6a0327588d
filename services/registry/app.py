"""The registry service app."""

from pathlib import Path

from starlette.applications import Starlette

from libs.common.app import build_app
from services.registry.settings import RegistrySettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: RegistrySettings) -> Starlette:
    """Build the registry app."""
    return build_app(settings, [], migrations=MIGRATIONS_DIR)
