"""The one model switch of a running app: the `m` key and the browser's choice (through the
live runner's intents), and a SIGHUP reload (edgecam/service/reload.py) all load through it."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, List, Optional

from edgecam.bounds import show
from edgecam.config import Config
from edgecam.errors import ConfigError, EdgecamError
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

    def next_name(self, current: Running) -> Optional[str]:
        """The provisioned model after ``current`` of its task (the `m` key), None: no other."""
        names = self.options(current.task)
        i = names.index(current.name) if current.name in names else -1
        name = names[(i + 1) % len(names)] if names else None
        return None if name == current.name else name

    def pick(self, current: Running, name: str) -> Model:
        """The model called ``name`` (a provisioned one of ``current``'s task), loaded;
        ConfigError with one sentence when it is not one or does not load."""
        names = self.options(current.task)
        if name not in names:
            raise ConfigError(f"cannot switch to {show(name)}: not a provisioned {current.task} model "
                              f"({', '.join(names) or 'none'})")
        try:
            new = self.load(replace(self.cfg, model=replace(self.cfg.model, name=name),
                                    preprocess=replace(self.cfg.preprocess, rho=None)))
        except EdgecamError as exc:
            raise ConfigError(f"cannot switch to {name}: {exc}") from None
        log.info("switched model to %s", name)
        return new
