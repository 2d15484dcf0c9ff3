"""Models: relative-position attention, PaSST-lite (and the real PaSST-S), the context
network and MAT-SED-lite, the CRNN baseline, encoder frame caches, global-local
fusion, and saving / loading trained models.

Chapters 01, 02 and 06 teach this folder. Depends on ``data`` and ``presets``.
"""
