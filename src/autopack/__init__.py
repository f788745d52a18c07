"""Autopack: a supervisor for zero-intervention autonomous software builds."""

__version__ = "0.1.0"
