"""Settings of the registry service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings


@dataclass(frozen=True)
class RegistrySettings(Settings):
    """REGISTRY_* variables and the platform ones."""

    service: ClassVar[str] = "registry"
    default_port: ClassVar[int] = 8102
