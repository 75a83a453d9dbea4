import doctest
import json

from click.testing import CliRunner

from mltrail import ab
from mltrail.cli import main


def test_ab_exports_what_it_claims_and_its_examples_run():
    assert ab.__all__ == sorted(ab.__all__)
    assert all(hasattr(ab, name) for name in ab.__all__)
    assert doctest.testmod(ab).failed == 0


def test_cli_power_prints_the_plan():
    result = CliRunner().invoke(main, ["ab", "power", "--baseline", "0.10", "--mde", "0.01",
                                       "--daily-units", "5000", "--coverage", "0.5"])
    assert result.exit_code == 0
    assert "14,745" in result.output and "29,490" in result.output and "12 days" in result.output
    split = json.loads(CliRunner().invoke(main, ["ab", "power", "--baseline", "0.1", "--mde", "0.01",
                                                 "--split", "0.1", "--json"]).output)
    assert (split["control"], split["treatment"]) == (73721, 8192)
    continuous = json.loads(CliRunner().invoke(main, ["ab", "power", "--std", "20", "--mde", "1",
                                                      "--json"]).output)
    assert continuous["control"] == 6281


def test_cli_power_errors_are_one_line():
    result = CliRunner().invoke(main, ["ab", "power", "--mde", "0.01"])
    assert result.exit_code == 1 and "give --effect-size" in result.output
    result = CliRunner().invoke(main, ["ab", "power", "--baseline", "0.1", "--mde", "0.01", "--split", "1"])
    assert result.exit_code == 1 and "--split" in result.output
