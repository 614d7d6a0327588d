"""Run the sandbox service: `python -m services.sandbox`."""

from libs.common.app import run
from services.sandbox.app import create_app
from services.sandbox.settings import SandboxSettings

if __name__ == "__main__":
    run(SandboxSettings, create_app)
