"""A tiny calculator: the example project of `autopack demo`."""


def add(a: float, b: float) -> float:
    """a + b"""
    return a + b
