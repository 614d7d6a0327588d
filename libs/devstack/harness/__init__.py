"""Run the services in-process for tests and benchmarks: ports, serving, settings, polling.

`serving` runs an app under uvicorn on a free port, `settings_for` points a service's settings at
a test database and NATS namespace, `until` polls a condition with a deadline. The auth and
registry services have their own modules (`harness.auth`, `harness.registry`), imported on
purpose so that `free_port` does not load every service.
"""

from libs.devstack.harness.polling import until
from libs.devstack.harness.serving import serving, settings_for
from libs.devstack.ports import free_port

__all__ = ["free_port", "serving", "settings_for", "until"]
