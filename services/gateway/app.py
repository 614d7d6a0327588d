"""The gateway service app."""

from pathlib import Path

from starlette.applications import Starlette

from libs.common.app import build_app
from services.gateway.settings import GatewaySettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: GatewaySettings) -> Starlette:
    """Build the gateway app."""
    return build_app(settings, [], migrations=MIGRATIONS_DIR)
