"""What one decode really costs against what the decode budget reserves for it.

For every memory bomb of loadtests/hostile_inputs.py (each kind of file whose decoder
allocates in its own way), a fresh interpreter decodes and hashes it as the check path
does (decode_image, the hashes, the crop candidates) and reports its peak RSS above what
it held before; beside it, what service.media.decode_cost reserves. The reservation must
be at least the peak for every kind (docs/BENCHMARKS.md, "Memory under hostile load").

    python -m loadtests.decode_memory --side 8000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from loadtests.hostile_inputs import memory_bombs
from service.media.decode import DEFAULT_DRAFT_SIDE, DEFAULT_MAX_PIXELS
from service.media.decode_cost import decode_cost

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
_MEASURE = """
import json, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
from service.media.crops import candidate_queries
from service.media.decode import decode_image
from service.media.hashes import hash_decoded
data = open(sys.argv[1], "rb").read()
before = hwm()
decoded = decode_image(data)
hash_decoded(decoded, data)
candidate_queries(decoded, 50)
after = hwm()
print(json.dumps({"peak": after - before}))
"""


# One interpreter for many files (the test's quicker form): before each, freed heap goes
# back to the kernel (malloc_trim) and the peak is reset to the current RSS (clear_refs).
_MEASURE_MANY = """
import ctypes, json, sys
from service.media.crops import candidate_queries
from service.media.decode import decode_image
from service.media.hashes import hash_decoded
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
libc = ctypes.CDLL(None)
peaks = []
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = status("VmRSS")
    decoded = decode_image(data)
    hash_decoded(decoded, data)
    candidate_queries(decoded, 50)
    del decoded
    peaks.append(status("VmHWM") - before)
print(json.dumps(peaks))
"""


def measure_many(files: list[bytes]) -> list[int]:
    """Peak RSS growth of each file's decode, one after another in one fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, data in enumerate(files):
            path = f"{folder}/{n}.img"
            with open(path, "wb") as handle:
                handle.write(data)
            paths.append(path)
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE_MANY, *paths],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    return [int(peak) for peak in json.loads(out.stdout.strip().splitlines()[-1])]


def measure(data: bytes) -> int:
    """Peak RSS growth, in bytes, of decoding and hashing `data` in a fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE, handle.name],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=8000, help="bombs are side x side pixels")
    args = parser.parse_args()
    mib = 1024 * 1024
    print(f"{'file':24} {'bytes':>10} {'reserved MiB':>13} {'peak MiB':>9} {'reserved/peak':>14}")
    worst = float("inf")
    for name, data in memory_bombs(args.side).items():
        reserved = decode_cost(data, DEFAULT_MAX_PIXELS, DEFAULT_DRAFT_SIDE)
        peak = measure(data)
        ratio = reserved / max(peak, 1)
        worst = min(worst, ratio)
        print(
            f"{name:24} {len(data):>10,} {reserved / mib:>13.0f} {peak / mib:>9.0f} {ratio:>14.2f}"
        )
    print(f"lowest reserved/peak: {worst:.2f}")
    return 0 if worst >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
