"""Hash lists both ways with Meta's own tool: the real `threatexchange` CLI
(python-threatexchange, a test dependency) run as a subprocess, with its state in a
temporary folder and only its built-in sample collaboration or local files (no network).

Its `dataset -P` export of the sample data (pdq, video_md5, video_sha256 and text and
URL types) imports whole, its video types as ours; its one-type shape (`-P -s pdq`)
imports with `--type`; what `hashguard export --format threatexchange` writes, its
`local_file` collaboration reads in full, and a plain export says how many lines it
would drop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

THREATEXCHANGE = Path(sys.executable).parent / "threatexchange"
SAMPLE = {"pdq": 16, "video_md5": 2, "video_sha256": 2}  # what its sample data holds
SKIPPED = {"raw_text": 3, "trend_query": 1, "url": 1, "url_md5": 1}


def threatexchange(state: Path, *args: str) -> str:
    """Run Meta's CLI with its state in `state`; its stdout."""
    assert THREATEXCHANGE.exists(), (
        f"{THREATEXCHANGE} is missing: python-threatexchange is a test dependency, "
        "install it with: .venv/bin/pip install -e '.[test]'"
    )
    result = subprocess.run(
        [str(THREATEXCHANGE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TX_STATEDIR": str(state), "HOME": str(state)},
    )
    assert result.returncode == 0, f"threatexchange {' '.join(args)}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def sample_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its state after `threatexchange fetch` of the built-in sample collaboration."""
    state = tmp_path_factory.mktemp("tx-sample")
    threatexchange(state, "fetch")
    summary = threatexchange(state, "dataset")
    for name, count in SAMPLE.items():
        assert f"{name}: {count}" in summary
    return state


def exported(data: Path, *args: str) -> list[str]:
    out = data.parent / "exported.txt"
    run_cli("export", "--data-dir", str(data), "--out", str(out), *args)
    return out.read_text().splitlines()


def test_a_full_dataset_export_imports_whole(sample_state: Path, tmp_path: Path) -> None:
    printed = threatexchange(sample_state, "dataset", "-P")
    lines = printed.splitlines()
    assert lines and all("'Sample Signals'" in line for line in lines)  # its -P shape
    listing = tmp_path / "dataset.txt"
    listing.write_text(printed)
    data = tmp_path / "data"
    result = run_cli("import", str(listing), "--data-dir", str(data))
    assert "imported 20 new entries (pending)" in result.stdout
    assert (
        "skipped 6 lines of python-threatexchange types HashGuard does not match" in result.stdout
    )
    assert "(raw_text 3, trend_query 1, url 1, url_md5 1)" in result.stdout

    ours = exported(data)
    names = ("pdq", "video-md5", "video-sha256")
    by_type = {name: sum(line.startswith(f"{name} ") for line in ours) for name in names}
    assert by_type == {"pdq": 16, "video-md5": 2, "video-sha256": 2}
    theirs = {tuple(line.split()[:2]) for line in lines if line.split()[0] in SAMPLE}
    renamed = {"video_md5": "video-md5", "video_sha256": "video-sha256", "pdq": "pdq"}
    assert {(renamed[t], h) for t, h in theirs} == {tuple(line.split()) for line in ours}


@pytest.mark.parametrize("extra", [[], ["-S"], ["--csv"]], ids=["metadata", "S", "csv"])
def test_its_other_print_shapes_import(
    sample_state: Path, tmp_path: Path, extra: list[str]
) -> None:
    printed = threatexchange(sample_state, "dataset", "-P", *extra)
    listing = tmp_path / ("dataset.csv" if extra == ["--csv"] else "dataset.txt")
    listing.write_text(printed)
    result = run_cli("import", str(listing), "--data-dir", str(tmp_path / "data"))
    assert "imported 20 new entries" in result.stdout


def test_the_one_type_shape_imports_with_its_type(sample_state: Path, tmp_path: Path) -> None:
    """`dataset -P -s pdq` prints `<hash> '<collab>' <metadata>`: no type in front."""
    printed = threatexchange(sample_state, "dataset", "-P", "-s", "pdq")
    first = printed.splitlines()[0].split()
    assert len(first[0]) == 64 and first[1] == "'Sample"  # the shape the README shows
    listing = tmp_path / "pdq.txt"
    listing.write_text(printed)
    data = tmp_path / "data"
    refused = run_cli("import", str(listing), "--data-dir", str(data), check=False)
    assert refused.returncode == 2
    assert "is imported with --type TYPE" in refused.stderr
    result = run_cli("import", str(listing), "--data-dir", str(data), "--type", "pdq")
    assert "imported 16 new entries" in result.stdout
    assert sorted(exported(data)) == sorted(
        f"pdq {line.split()[0]}" for line in printed.splitlines()
    )


def _our_list(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    sizes = {"pdq": 32, "phash": 8, "sha256": 32, "md5": 16, "pdq-window": 32}
    counts = {"pdq": 3, "phash": 2, "sha256": 2, "md5": 2, "pdq-window": 5}
    lines = [
        f"{name} {rng.integers(0, 256, sizes[name], dtype=np.uint8).tobytes().hex()}\n"
        for name, count in counts.items()
        for _ in range(count)
    ]
    path = tmp_path / "ours.txt"
    path.write_text("".join(lines))
    return path


def test_exports_say_what_its_tools_drop_and_its_format_reads_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("import", str(_our_list(tmp_path)), "--data-dir", str(data))
    plain, theirs = tmp_path / "plain.txt", tmp_path / "theirs.txt"
    said = run_cli("export", "--data-dir", str(data), "--out", str(plain)).stderr
    assert "exported 14 hashes; 11 of them are of types Meta's python-threatexchange" in said
    assert "(md5 2, pdq-window 5, phash 2, sha256 2)" in said
    assert "--format threatexchange writes only the ones they read" in said
    args = ("export", "--data-dir", str(data), "--out", str(theirs), "--format", "threatexchange")
    said = run_cli(*args).stderr
    assert "exported 3 hashes in python-threatexchange's names; left out 11" in said

    for path, expected in ((plain, 3), (theirs, 3)):
        state = tmp_path / f"tx-{path.stem}"
        threatexchange(
            state, "config", "collab", "edit", "local_file", "--create",
            "--filename", str(path), path.stem,
        )  # fmt: skip
        threatexchange(state, "fetch")
        read = threatexchange(state, "dataset", "-P", "-S").splitlines()
        assert sorted(read) == sorted(
            line for line in plain.read_text().splitlines() if line.startswith("pdq ")
        )
        assert len(read) == expected
    assert sorted(theirs.read_text().splitlines()) == sorted(
        line for line in plain.read_text().splitlines() if line.startswith("pdq ")
    )
