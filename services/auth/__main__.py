"""Run the auth service: `python -m services.auth`."""

from libs.common.app import run
from services.auth.app import create_app
from services.auth.settings import AuthSettings

if __name__ == "__main__":
    run(AuthSettings, create_app)
