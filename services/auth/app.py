"""The auth service app."""

from pathlib import Path

from starlette.applications import Starlette

from libs.common.app import build_app
from services.auth.settings import AuthSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: AuthSettings) -> Starlette:
    """Build the auth app."""
    return build_app(settings, [], migrations=MIGRATIONS_DIR)
