"""Counters the harness reads (`ComfyClient.stats`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class ClientStats:
    http_requests: int = 0
    http_failures: int = 0
    ws_connects: int = 0
    reconnect_attempts: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    frames_ignored: int = 0
    frames_repaired: int = 0
    polls: int = 0
    probes: int = 0
    reconciles: int = 0
    unresponsive: int = 0
    forced_reconnects: int = 0
    submit_ambiguous: int = 0
    resubmits: int = 0
    final_checks: int = 0
    jobs_reads: int = 0  # queue reads answered by the Jobs API
    jobs_fallbacks: int = 0  # Jobs API reads that failed on a server that has it: /queue asked instead
    reported: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)
