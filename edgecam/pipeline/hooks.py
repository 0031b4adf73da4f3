"""The supervisor interface: every event the runners report to whoever supervises them
(systemd: edgecam/service/systemd.py; `edgecam bench`: the time of the first result).
All no-ops here, so a runner never asks whether its supervisor listens."""

from __future__ import annotations

from edgecam.pipeline.health import Heartbeat


class Hooks:
    supervised = False          # under a supervisor (systemd): a camera missing at start is waited for

    @property
    def heartbeat(self) -> Heartbeat:
        """Where the worker threads check in (health.py): a supervisor with a watchdog pings
        only while none of them is stuck."""
        beat = self.__dict__.get("_heartbeat")
        if beat is None:
            beat = self.__dict__["_heartbeat"] = Heartbeat()
        return beat

    def ready(self, status: str = "") -> None:
        """The first result has gone through the pipeline, or the service is up and waiting
        for a camera that is not there yet (``status`` says so)."""

    def alive(self) -> None:
        """After every result (from the thread that made or wrote it): the pipeline moves."""

    def status(self, text: str) -> None:
        """One line on how it goes ("v1_ssd: camera 30.0 FPS, ..."; "reconnecting to ...")."""

    def model_loaded(self, name: str) -> None:
        """The model in use: at the start, and after every switch (key, browser, reload)."""

    def reloading(self) -> None:
        """A SIGHUP reload began."""

    def reloaded(self, text: str = "") -> None:
        """The reload is done (applied or refused); ``text`` says how it went."""

    def stopping(self) -> None:
        """Shutting down."""
