"""The errors edgecam reports to a person: one sentence and an exit code, never a traceback."""

import argparse
import re

from edgecam.bounds import SHOWN_CHARS, show


class EdgecamError(Exception):
    """A problem the user can act on. ``str(err)`` is the one sentence shown."""

    exit_code = 1


class UsageError(EdgecamError):
    """Bad command line or configuration (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A config key that is unknown, or a value of the wrong type or range (exit code 2)."""


class ModelError(EdgecamError):
    """A model that is missing, corrupt, or cannot run (exit code 1)."""


class ConversionError(ModelError):
    """A model the int8 converter cannot read or does not handle: refused, the model runs as
    published (``str(err)`` says why, as a clause after "the int8 converter refuses it:")."""


class CorruptModelError(ConversionError):
    """A .tflite file whose structure is broken (truncated, offsets outside it, malformed
    tables): never handed to an interpreter (tflite-runtime dies of a segmentation fault on a
    truncated file instead of raising)."""


class SourceError(EdgecamError):
    """A camera, stream or file that cannot be opened or read (exit code 1)."""


class OutputError(EdgecamError):
    """An output that cannot be written (exit code 1)."""


class ArgParser(argparse.ArgumentParser):
    """An argument parser whose errors are one sentence and exit 2, like every other usage error."""

    def error(self, message: str):
        # argparse quotes the bad value whole: show at most SHOWN_CHARS of it
        message = re.sub(r"'([^']{%d,})'" % SHOWN_CHARS, lambda m: show(m.group(1)), message)
        raise UsageError(f"{message} (see `{self.prog} --help`)")
