"""The course's tooling: a notebook's set-up, the papermill runner, the ipywidgets
explorers and the figures. Depends on everything below it; nothing depends on it.

A notebook starts with ``from matsed_lite.course import setup, start_notebook``.
"""
from .notebook import course_budget, setup, start_notebook

__all__ = ["course_budget", "setup", "start_notebook"]
