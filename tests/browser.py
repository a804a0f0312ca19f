"""Programs the web tests need from the system (Node, Debian's Chromium): under CI=true
a missing one fails the test (.ci/run installs them); elsewhere it is skipped with how to
install it."""

from __future__ import annotations

import os
import shutil

import pytest


def need_program(name: str, debian_package: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install -y {debian_package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}: .ci/run installs it")
        pytest.skip(reason)
    return path
