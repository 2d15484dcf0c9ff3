"""Data: the DESED format, audio, labels, log-mel features, layouts, datasets, the data
check, in-memory stores, and DESED-lite (the synthetic set the course runs on).

Chapter 00 teaches this folder. Depends on ``presets`` only.
"""
