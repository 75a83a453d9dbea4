"""Only the command line prints: the library reports through loggers an application can
configure or silence (Python shows their warnings on stderr when nothing is configured)."""

import ast
from pathlib import Path

import pytest

import mltrail

SRC = Path(mltrail.__file__).parent


@pytest.mark.slow
def test_no_print_outside_the_command_line():
    printing = []
    for file in sorted(SRC.rglob("*.py")):
        if file.relative_to(SRC).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{file.relative_to(SRC)}:{node.lineno}")
    assert printing == [], "log with logging.getLogger(__name__) instead"
