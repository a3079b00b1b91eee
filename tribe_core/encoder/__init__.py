"""TRIBE v2 brain encoder: strict checkpoint loading and a plain-PyTorch forward.

Public API::

    from tribe_core.encoder import load_encoder, load_config_yaml, save_random_checkpoint
"""

from tribe_core.encoder.config import load_config_yaml
from tribe_core.encoder.load import load_encoder
from tribe_core.encoder.model import TribeEncoder
from tribe_core.encoder.random import save_random_checkpoint

__all__ = ["TribeEncoder", "load_config_yaml", "load_encoder", "save_random_checkpoint"]
