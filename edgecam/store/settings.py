"""The ``history:`` section of the config schema (see edgecam/config.py): the embedded event
and count store (edgecam/store/). Every key needs a restart to change."""

from __future__ import annotations

from dataclasses import dataclass

from edgecam.schema import setting


@dataclass
class HistoryConfig:
    enabled: bool = setting(True, flag="--no-history", flag_value=False,
                            help="live mode: keep events, clips, counts and status in "
                                 "<state folder>/history.db (SQLite); false: keep nothing")
    keep_days: float = setting(30.0, range=(0.01, 3650.0), help="delete what is older than this (days)")
    max_mb: float = setting(500.0, range=(1.0, 1e6),
                            help="delete the oldest events (with their snapshots) beyond this size (MB)")
    snapshot_px: int = setting(320, range=(0, 4096),
                               help="width of each event's annotated snapshot (JPEG; 0: no snapshots)")
