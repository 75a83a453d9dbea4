"""Every setting is declared once, in config.py, and the README's table is generated from
the declarations (scripts/settings_table.py), so the two never drift."""

import re
import runpy

from mltrail import config
from tests.factories import REPO

SCRIPT = runpy.run_path(str(REPO / "scripts" / "settings_table.py"))
NAME = re.compile(r"MLTRAIL_[A-Z0-9_]*[A-Z0-9]")
# names that are no setting: a heredoc's delimiter in a rerun script, a test's own switch
NOT_SETTINGS = {"MLTRAIL_DIFF", "MLTRAIL_SCREENSHOTS_DIR"}


def test_the_readmes_table_is_the_one_generated_from_config():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert SCRIPT["readme_table"](readme) == config.settings_markdown(), \
        "run: python scripts/settings_table.py --write"
    assert SCRIPT["main"](["--check"]) == 0


def test_every_setting_has_its_line():
    for setting in config.SETTINGS:
        assert setting.env.startswith("MLTRAIL_") and setting.doc, setting
        assert "|" not in setting.doc + setting.shown and "\n" not in setting.doc, setting
    assert len({s.env for s in config.SETTINGS}) == len(config.SETTINGS)


def test_every_variable_the_code_or_the_readme_names_is_a_setting():
    declared = {s.env for s in config.SETTINGS}
    files = [*sorted((REPO / "src").rglob("*.py")), *sorted((REPO / "app").rglob("*.py")), REPO / "README.md"]
    named = {(name, str(path.relative_to(REPO))) for path in files
             for name in NAME.findall(path.read_text(encoding="utf-8"))}
    unknown = sorted((name, path) for name, path in named if name not in declared | NOT_SETTINGS)
    assert not unknown, f"declare these in src/mltrail/config.py (SETTINGS): {unknown}"


def test_string_settings_read_the_environment_then_the_default(monkeypatch):
    # (the autouse fixture starts every test with no MLTRAIL_* variable)
    assert config.resolve_store_root().name == "mltrail_runs"
    assert config.ab_memory_limit() == "1GB"
    monkeypatch.setenv("MLTRAIL_DIR", "elsewhere")
    monkeypatch.setenv("MLTRAIL_AB_MEMORY", "512MB")
    monkeypatch.setenv("MLTRAIL_USER", "ada")
    assert config.resolve_store_root().name == "elsewhere"
    assert config.resolve_store_root("given").name == "given"
    assert config.ab_memory_limit() == "512MB"
    assert config.current_user() == "ada"


ENV_READ = re.compile(r"""(?:environ\.get|getenv|environ\[)\(?\s*["'](MLTRAIL_\w+)""")


def test_only_config_reads_the_settings_from_the_environment():
    """One place decides a setting's value (argument, variable, default): a module that read
    the variable itself would skip the default, the empty-is-unset rule and the cast."""
    reads = sorted((name, str(path.relative_to(REPO)))
                   for path in [*(REPO / "src").rglob("*.py"), *(REPO / "app").rglob("*.py")]
                   if path.name != "config.py"
                   for name in ENV_READ.findall(path.read_text(encoding="utf-8")))
    assert not reads, f"read these through their Setting in src/mltrail/config.py: {reads}"
