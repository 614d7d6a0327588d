"""Run the registry service: `python -m services.registry`."""

from libs.common.app import run
from services.registry.app import create_app
from services.registry.settings import RegistrySettings

if __name__ == "__main__":
    run(RegistrySettings, create_app)
