"""deploy/ as the tests read it: its folder, and the image's health check as a module."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HEALTHCHECK = DEPLOY / "healthcheck.py"


@functools.cache
def healthcheck() -> ModuleType:
    """deploy/healthcheck.py, which the image runs as a script (it is no package's)."""
    spec = importlib.util.spec_from_file_location("meetreg_deploy_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
