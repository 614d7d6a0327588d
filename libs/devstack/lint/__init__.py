"""The project's own lint: import and layering rules ruff does not know (`make lint` runs it).

Each rule reads Python sources and reports `path:line: rule: message`:

- `sql`: SQL statements only in `store` modules (`store.py`, `store/`), migrations and the few
  libs/common modules that are SQL by nature (`ALLOWED_SQL`).
- `subject`: NATS subjects (`events.*`, `live.*`, `rpc.*`) and event types
  (`<service>.<entity>.<verb>`) only in libs/common (`subjects.py`, `rpc.py`, `events.py`).
- `private-import`: no `from x import _y`: what another module uses is public.
- `bus-nc`: no `.nc` on a Bus outside libs/common/bus.py: services use Bus.send/listen/ask.
- `import-cycle`: no import cycle among the modules of one service (every import counts, those
  inside functions and under TYPE_CHECKING included).
"""
