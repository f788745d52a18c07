"""Builder command of phase P1.2: multiply(), with a TODO the static check will flag."""
from pathlib import Path

module = Path("src/calc/__init__.py")
module.write_text(module.read_text() + '''

def multiply(a: float, b: float) -> float:
    """a * b"""
    # TODO: decide how to round very large products
    return a * b
''')
Path("tests/test_multiply.py").write_text('''from calc import multiply


def test_multiply():
    assert multiply(4, 3) == 12
''')
