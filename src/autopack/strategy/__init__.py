"""Rulesets, built-in defaults and the StrategyEngine (SPEC §6-§11)."""
