"""TRIBE v2 brain encoder: strict checkpoint loading and a plain-PyTorch forward.

Public API::

    from tribe_core.encoder import load_encoder, load_config_yaml

Each name loads its module on first use (:mod:`tribe_core.lazy`), so the light
modules (``config``, ``files``) do not import torch. Random-weight checkpoints
for the demo, tests and benchmarks: :mod:`tribe_core.demo_models.tribe`.
"""

from typing import TYPE_CHECKING

from tribe_core.lazy import lazy_exports

__all__ = ["TribeEncoder", "checkpoint_meta", "load_config_yaml", "load_encoder"]

if TYPE_CHECKING:
    from tribe_core.encoder.config import load_config_yaml
    from tribe_core.encoder.load import checkpoint_meta, load_encoder
    from tribe_core.encoder.model import TribeEncoder

__getattr__, __dir__ = lazy_exports(__name__)
