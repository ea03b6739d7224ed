"""DINO (Caron et al. 2021) and the DINOv2 parts it can use: head, loss, KoLeo, Sinkhorn-Knopp."""

from lowdino.methods.dino.head import DINOHead
from lowdino.methods.dino.koleo import KoLeoLoss
from lowdino.methods.dino.loss import DINOLoss, teacher_statistics
from lowdino.methods.dino.method import DINO
from lowdino.methods.dino.sinkhorn import sinkhorn_knopp

__all__ = ["DINO", "DINOHead", "DINOLoss", "KoLeoLoss", "sinkhorn_knopp", "teacher_statistics"]
