"""One small error hierarchy: every user-facing failure names the file and the fix."""

from __future__ import annotations

from pathlib import Path


class TribeError(Exception):
    """Base class of every error tribeflow raises on purpose."""


class TribeInputError(TribeError):
    """A stimulus, sidecar or feature store is unusable.

    Parameters
    ----------
    message
        What is wrong and, where possible, how to fix it.
    path
        The offending file, named in the message.
    stimulus
        The stimulus name (file stem), named in the message.
    """

    def __init__(
        self, message: str, path: str | Path | None = None, stimulus: str | None = None
    ) -> None:
        self.path = None if path is None else Path(path)
        self.stimulus = stimulus
        where = []
        if stimulus is not None:
            where.append(f"stimulus {stimulus!r}")
        if path is not None:
            where.append(f"file {str(path)!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class TribeConfigError(TribeError):
    """The workflow configuration or a checkpoint's config.yaml is invalid."""


class CheckpointError(TribeError):
    """A checkpoint does not match the architecture it declares."""
