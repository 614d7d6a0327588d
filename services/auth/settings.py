"""Settings of the auth service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings


@dataclass(frozen=True)
class AuthSettings(Settings):
    """AUTH_* variables and the platform ones."""

    service: ClassVar[str] = "auth"
    default_port: ClassVar[int] = 8101
