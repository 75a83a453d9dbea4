"""The layers of docs/design.md hold: import-linter's contract in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import REPO


@pytest.mark.slow
def test_no_module_imports_a_layer_above_it():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
