"""Evaluation of frozen or fine-tuned backbones: kNN, linear probe, fine-tuning, published references.

Submodules are imported where they are used (e.g. ``from lowdino.eval.knn import weighted_knn_top1``)
so that the trainer's kNN monitor does not pull in the runner and its dependencies.
"""
