"""LowDINO: DINO self-distillation for low-parameter vision backbones."""

__version__ = "0.1.0"
