"""Builder command of phase P2.1: divide(), and a test that fails on its first run only
(a flaky test: the preflight gate retries, sees it pass, and records it)."""
from pathlib import Path

module = Path("src/calc/__init__.py")
module.write_text(module.read_text() + '''

def divide(a: float, b: float) -> float:
    """a / b; ZeroDivisionError when b is 0"""
    return a / b
''')
Path("tests/test_divide.py").write_text('''from pathlib import Path

from calc import divide


def test_divide():
    assert divide(9, 3) == 3


def test_divide_warm_cache():
    marker = Path(__file__).with_name(".flaky-divide")
    first_run = not marker.exists()
    marker.write_text("seen")
    assert not first_run, "cold cache on the first run"
''')
