"""Run the audit service: `python -m services.audit`."""

from libs.common.app import run
from services.audit.app import create_app
from services.audit.settings import AuditSettings

if __name__ == "__main__":
    run(AuditSettings, create_app)
