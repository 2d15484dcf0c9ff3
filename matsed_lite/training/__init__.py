"""Training: one engine for every stage, augmentation, block masking, encoder
pre-training, masked-reconstruction pre-training, and mean-teacher fine-tuning
(mixed batches, losses, ramps, the step, whole runs).

Chapters 01 and 03-05 teach this folder. Depends on ``evaluation`` (model selection),
``models``, ``data`` and ``presets``.
"""
