"""Evaluation: frame prediction, post-processing, ground truth, PSDS / F1 / tagging
metrics, score files, evaluating and applying a trained run, the shipped models' checks.

Chapter 07 teaches this folder. Depends on ``models``, ``data`` and ``presets``.
"""
