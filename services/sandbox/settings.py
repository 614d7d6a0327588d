"""Settings of the sandbox service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings


@dataclass(frozen=True)
class SandboxSettings(Settings):
    """SANDBOX_* variables and the platform ones."""

    service: ClassVar[str] = "sandbox"
    default_port: ClassVar[int] = 8104
