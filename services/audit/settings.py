"""Settings of the audit service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings


@dataclass(frozen=True)
class AuditSettings(Settings):
    """AUDIT_* variables and the platform ones."""

    service: ClassVar[str] = "audit"
    default_port: ClassVar[int] = 8105
