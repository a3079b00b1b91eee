"""Logging set-up for one stage: messages go to the rule's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send ``tribe_core`` log records (and warnings) to ``log_path`` and stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    logger = logging.getLogger("tribe_core")

    def _log_uncaught(exc_type, exc, tb) -> None:  # noqa: ANN001
        # The rule's log must hold the reason a job failed, not only Snakemake's output.
        logger.error("stage failed: %s", exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = _log_uncaught
    return logger
