"""The one model switch of a running app: the `m` key and the browser's choice (through the
live runner's intents), and a SIGHUP reload (edgecam/service/reload.py) all load through it."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, List, Optional

from edgecam.bounds import show
from edgecam.config import Config
from edgecam.errors import EdgecamError
from edgecam.provision import catalog
from edgecam.model.interface import Model as Running
from edgecam.model.loader import Model, load_model

log = logging.getLogger("edgecam")


class ModelSwitcher:
    def __init__(self, cfg: Config, load: Callable[[Config], Model] = load_model):
        self.cfg = cfg
        self._load = load

    def options(self, task: str) -> List[str]:
        """The provisioned catalogue models of one task: what the switch cycles through."""
        return catalog.provisioned(task, self.cfg.model.dir)

    def load(self, cfg: Config) -> Model:
        """The model ``cfg`` names, loaded (EdgecamError when it cannot be: the caller keeps
        the one running)."""
        return self._load(cfg)

    def switch(self, current: Running, name: Optional[str] = None) -> Optional[Model]:
        """The model called ``name``, or with None the next provisioned one of the same task
        (the `m` key); None when there is nothing to switch to (said in the log)."""
        names = self.options(current.task)
        if name is None:
            if len(names) < 2:
                return None
            i = names.index(current.name) if current.name in names else -1
            name = names[(i + 1) % len(names)]
        elif name not in names:
            log.warning("cannot switch to %s: not a provisioned %s model (%s)", show(name), current.task,
                        ", ".join(names) or "none")
            return None
        if name == current.name:
            return None
        try:
            new = self.load(replace(self.cfg, model=replace(self.cfg.model, name=name),
                                    preprocess=replace(self.cfg.preprocess, rho=None)))
        except EdgecamError as exc:
            log.warning("cannot switch to %s: %s", name, exc)
            return None
        log.info("switched model to %s", name)
        return new
