"""Settings of the gateway service."""

from dataclasses import dataclass
from typing import ClassVar

from libs.common.settings import Settings


@dataclass(frozen=True)
class GatewaySettings(Settings):
    """GATEWAY_* variables and the platform ones."""

    service: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8103
