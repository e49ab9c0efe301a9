"""Where and how one sweep's repetitions run, shared by the server session (server.py) and the
load generators (generators.py): the hosts, the settings, the server binary and the run's
directories. Fixed for a Runner's life."""
from __future__ import annotations

import dataclasses

from ..format.scenario import Settings


@dataclasses.dataclass(frozen=True)
class RunContext:
    host: object            # where the server runs (and is sampled)
    client_hosts: tuple     # where load generators run; the first also runs the harness's probes
    settings: Settings
    server_bin: str
    run_dir: str            # absolute: a relative path would differ between processes (nginx -p)
    logs_dir: str
    repo: str               # absolute

    @property
    def client_host(self):
        return self.client_hosts[0]

    @property
    def addr(self) -> str:
        """Where clients connect to the server."""
        return self.host.client_address
