"""Time `hashguard import` of a large `<type> <hex>` list and the server's start-up load.

Writes N seeded random PDQ hashes to a temporary list, imports it with the real CLI
(one transaction, --vetted), imports it again (all duplicates), then times building the
in-memory matcher from the store, as `hashguard serve` does at start.
Run: python loadtests/import_and_load.py [--entries 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from service.config import Settings
from service.runtime import Runtime
from service.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        hashes = np.random.default_rng(1).integers(0, 256, (args.entries, 32), dtype=np.uint8)
        with listing.open("w") as out:
            out.writelines(f"pdq {row.tobytes().hex()}\n" for row in hashes)
        data = Path(tmp) / "data"
        rows = [("entries", f"{args.entries:,}")]
        for label in ("import (new)", "import again (duplicates)"):
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "service.cli",
                    "import",
                    str(listing),
                    "--data-dir",
                    str(data),
                    "--vetted",
                ],
                check=True,
                capture_output=True,
            )
            rows.append((label, f"{time.perf_counter() - started:.1f} s"))
        started = time.perf_counter()
        runtime = Runtime(open_store("sqlite", data), Settings(data_dir=str(data)))
        rows.append(("start-up load into the matcher", f"{time.perf_counter() - started:.1f} s"))
        runtime.store.close()
    for label, value in rows:
        print(f"{label:<34} {value:>12}")


if __name__ == "__main__":
    main()
