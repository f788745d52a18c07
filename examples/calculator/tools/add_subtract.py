"""Builder command of phase P1.1: add subtract() and its test."""
from pathlib import Path

module = Path("src/calc/__init__.py")
module.write_text(module.read_text() + '''

def subtract(a: float, b: float) -> float:
    """a - b"""
    return a - b
''')
Path("tests/test_subtract.py").write_text('''from calc import subtract


def test_subtract():
    assert subtract(5, 3) == 2
''')
