"""The docs are part of the product: keep the README and docs/ARCHITECTURE.md in step with
the code."""

from __future__ import annotations

import re
from pathlib import Path

from service import metrics
from service.config import SETTINGS, WEB_SETTINGS
from tests.test_architecture import ARCHITECTURE, documented_layers, module_files

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_quick_start_has_two_commands_and_ci_runs_the_second() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in _shell_blocks(quick_start)]
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    assert "hashguard serve" in blocks[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1] in ci.splitlines()


def test_ci_installs_the_system_packages_the_readme_names_before_testing() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"`apt-get install -y ([a-z0-9 .+-]+)`", quick_start)
    assert found, "the quick start names the Debian packages the web tests need"
    packages = found.group(1).split()
    assert {"chromium", "nodejs"} <= set(packages)
    test_command = _shell_blocks(quick_start)[1].strip()
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    install = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    assert set(packages) <= set(lines[install].split())
    assert install < lines.index(test_command)


def test_every_setting_is_in_the_configuration_table() -> None:
    for setting in (*SETTINGS, *WEB_SETTINGS):
        row = f"| `{setting.flag}` | `{setting.env}` | `{setting.default}` | {setting.help} |"
        assert row in README, row


def test_every_metric_is_documented() -> None:
    names = [
        value._name
        for value in vars(metrics).values()
        if hasattr(value, "_name") and hasattr(value, "collect")
    ]
    names += [family.name for family in metrics.ReplicaCollector().describe()]
    assert "hashguard_pending_hits" in names and "hashguard_requests" in names
    for name in names:
        assert name.removesuffix("_total") in README, name


def test_the_module_map_lists_only_modules_that_exist() -> None:
    """tests/test_architecture.py checks the other way: every module is in the map."""
    modules = set(module_files())
    listed = {m for m in documented_layers() if not (ROOT / m.replace(".", "/")).is_dir()}
    assert not listed - modules, f"docs/ARCHITECTURE.md names missing modules: {listed - modules}"


def test_the_rpc_list_is_the_protos() -> None:
    proto = (ROOT / "proto" / "hashguard" / "v1" / "hashguard.proto").read_text()
    in_proto: dict[str, list[str]] = {}
    for service, body in re.findall(r"^service (\w+) \{(.*?)^\}", proto, re.M | re.S):
        in_proto[service] = re.findall(r"^\s*rpc (\w+)\(", body, re.M)
    documented = {
        service: [name.strip() for name in names.split(",")]
        for service, names in re.findall(r"^- (\w+Service): ([\w, ]+)$", ARCHITECTURE, re.M)
    }
    assert len(in_proto) == 3 and documented == in_proto
