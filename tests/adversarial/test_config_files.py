"""Attacks on the configuration files charter finds or is given: a hostile repository's lint
configuration (`.charter.yaml`, `pyproject.toml`, found by walking up from the policy CI lints),
the gateway configuration and the humans (notification) configuration.

Invariants attacked: every one is read through the bounded document reader (charter.documents):
an alias bomb, a document nested thousands deep, a `!!python/object` tag, a FIFO or a device is
refused with a one-line error (exit 2 for `charter check`), never a hang, a RecursionError or a
traceback; a `pyproject.toml` whose `tool` is not a table has no charter section (not an
AttributeError).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.lintconfig import LintConfigError, find_config
from charter.cli.main import cli
from charter.integrations.gateway_config import GatewayConfigError, load_config
from charter.notify.config import NotifyConfigError, load_humans_config

#: a billion laughs: 9**10 strings from a few hundred bytes, as the lint level of W501
BOMB = (
    "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    + "lint: {W501: *j}\n"
)

YAML = {
    "alias bomb": BOMB,
    "flow nested 20,000": "lint: " + "[" * 20_000 + "]" * 20_000 + "\n",
    "python object": "!!python/object/apply:os.system ['echo PWNED']\n",
}
TOML = {
    "arrays nested 50,000": "[tool.charter]\nlint = " + "[" * 50_000 + "]" * 50_000 + "\n",
    "tables nested 5,000": "[tool.charter]\nlint = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n",
    "charter is not a table": "[tool]\ncharter = 5\n",
}


def _check(root: Path) -> tuple[int, str]:
    (root / "p.charter").write_text('policy p\ntool t { }\npermit a {\n  action call t\n  reason "r"\n}\n')
    started = time.monotonic()
    res = CliRunner().invoke(cli, ["--color", "never", "check", str(root)])
    assert time.monotonic() - started < 10
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


@pytest.mark.parametrize("name", sorted(YAML))
def test_a_hostile_charter_yaml_is_refused_quickly(tmp_path: Path, name: str) -> None:
    (tmp_path / ".charter.yaml").write_text(YAML[name])
    code, out = _check(tmp_path)
    assert code == 2 and ".charter.yaml" in out and "Traceback" not in out, out
    assert "PWNED" not in out and len(out) < 1000


@pytest.mark.parametrize("name", sorted(TOML))
def test_a_hostile_pyproject_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "pyproject.toml").write_text(TOML[name])
    code, out = _check(tmp_path)
    assert code == 2 and "pyproject.toml" in out, out


def test_a_pyproject_whose_tool_is_not_a_table_has_no_charter_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 1\n")
    code, out = _check(tmp_path)
    assert code == 0 and "0 errors" in out, out


def test_a_lint_configuration_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".charter.yaml")
    (tmp_path / "p.charter").write_text("policy p\n")
    # is_file() is False for a FIFO: it is not taken as configuration, and never opened
    assert find_config(tmp_path / "p.charter") is None


def test_a_lint_configuration_linked_to_a_device_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").symlink_to("/dev/zero")
    assert find_config(tmp_path / "p.charter") is None


def test_a_good_lint_configuration_still_applies(tmp_path: Path) -> None:
    (tmp_path / ".charter.yaml").write_text("lint:\n  W506: error\n  W505: off\n")
    assert find_config(tmp_path / "p.charter") == (
        tmp_path / ".charter.yaml",
        {"W506": "error", "W505": "off"},
    )
    with pytest.raises(LintConfigError, match="appears twice"):
        (tmp_path / ".charter.yaml").write_text("lint:\n  W506: off\n  W506: error\n")
        find_config(tmp_path / "p.charter")


@pytest.mark.parametrize("name", sorted(YAML))
def test_a_hostile_gateway_configuration_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "gw.yaml").write_text(YAML[name])
    started = time.monotonic()
    with pytest.raises(GatewayConfigError):
        load_config(tmp_path / "gw.yaml")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", sorted(YAML))
def test_a_hostile_humans_configuration_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "humans.yaml").write_text(YAML[name])
    started = time.monotonic()
    with pytest.raises(NotifyConfigError):
        load_humans_config(tmp_path / "humans.yaml")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("loader", [load_config, load_humans_config])
def test_a_configuration_that_is_a_fifo_or_a_device_is_refused_without_blocking(
    tmp_path: Path, loader: object
) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    for path in (tmp_path / "fifo.yaml", Path("/dev/zero")):
        started = time.monotonic()
        with pytest.raises((GatewayConfigError, NotifyConfigError)):
            loader(path)  # type: ignore[operator]
        assert time.monotonic() - started < 5
