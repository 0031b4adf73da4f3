"""A progress bar for file mode, on a terminal only (tqdm, on stderr)."""

from __future__ import annotations

import sys
from typing import Optional

from tqdm import tqdm

from edgecam.sinks.base import Sink


class ProgressBar(Sink):
    """Frames done of the file's frames, the rate and the last inference time."""

    wants_frames = False

    def __init__(self, total: Optional[int], label: str, enabled: Optional[bool] = None):
        enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar = tqdm(total=total if total and total > 0 else None, desc=label, unit="frames",
                        disable=not enabled, file=sys.stderr, dynamic_ncols=True)

    def result(self, result) -> None:
        self.bar.set_postfix_str(f"{result.inference_ms:5.1f} ms", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
