"""Whether a feature model runs on its fused path (``features.fused``), chosen once per model.

Shared by :mod:`tribe_core.features.vjepa2_fused` and :mod:`tribe_core.features.llama_fused`;
no torch import, so :mod:`tribe_core.features.spec` can check the setting at DAG time.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

FUSED_MODES = ("auto", "on", "off")
Fused = TypeVar("Fused")


def fused_mode(mode: str | bool) -> str:
    """``mode`` as one of :data:`FUSED_MODES` (YAML's bare ``on`` / ``off`` are booleans).

    Raises
    ------
    ValueError
        ``mode`` is not ``auto``, ``on``, ``off``, ``True`` or ``False``.
    """
    if isinstance(mode, bool):
        return "on" if mode else "off"
    if mode not in FUSED_MODES:
        raise ValueError(f"features.fused must be one of {FUSED_MODES}, got {mode!r}")
    return mode


class FusedChooser(Generic[Fused]):
    """Per model and mode: its fused wrapper, or ``None`` to run the transformers module.

    Parameters
    ----------
    modality
        Named in the log lines (``"text"``, ``"video"``).
    unsupported_reason
        Why a model cannot take the fused path, or ``None``.
    build
        Makes the fused wrapper of a supported model (once per model: modes share it).
    """

    def __init__(
        self,
        modality: str,
        unsupported_reason: Callable[[Any], str | None],
        build: Callable[[Any], Fused],
    ) -> None:
        self.modality = modality
        self.unsupported_reason = unsupported_reason
        self.build = build
        self._chosen: weakref.WeakKeyDictionary[Any, dict[str, Fused | None]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, model: Any, mode: str | bool = "auto") -> Fused | None:
        """``"auto"``: fused on CUDA when supported; ``"on"``: whenever supported; ``"off"``."""
        mode = fused_mode(mode)
        if mode == "off":
            return None
        chosen = self._chosen.setdefault(model, {})
        if mode in chosen:
            return chosen[mode]
        reason = self.unsupported_reason(model)
        if reason is None and mode == "auto" and next(model.parameters()).device.type != "cuda":
            reason = "not on a CUDA device"
        fused = None
        if reason is None:
            others = [f for f in chosen.values() if f is not None]
            fused = others[0] if others else self.build(model)
            log.info("%s: fused path (%s)", self.modality, type(fused).__name__)
        else:
            (log.warning if mode == "on" else log.info)(
                "%s: transformers' module, not the fused path (%s)", self.modality, reason
            )
        chosen[mode] = fused
        return fused
