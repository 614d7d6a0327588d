"""Run the gateway service: `python -m services.gateway`."""

from libs.common.app import run
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

if __name__ == "__main__":
    run(GatewaySettings, create_app)
