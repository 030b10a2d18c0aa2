"""Every async test runs under both asyncio and trio (anyio's pytest plugin).

Two more things every test gets:

* A time limit (pytest-timeout, set in pyproject.toml): a hang fails the
  test instead of stalling the run.
* `@pytest.mark.isolated`: the test runs in a fresh interpreter (a child
  `python -m pytest` of just that test), so a crash there (a segfault, an
  abort) is reported as that test's failure instead of ending the run.
  Use it for regression tests of bugs that corrupted memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

_ISOLATED_ENV = "RSYSCALL_ISOLATED_TEST"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "isolated: run the test in a fresh interpreter, so a crash fails only it"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("isolated") is None or os.environ.get(_ISOLATED_ENV) == item.nodeid:
        yield
        return
    # Run just this test in a child interpreter; replace the call with a
    # check of how it ended.
    env = {**os.environ, _ISOLATED_ENV: item.nodeid}
    root = str(item.config.rootpath)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", item.nodeid],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )

    def check() -> None:
        if result.returncode != 0:
            how = (
                f"killed by signal {-result.returncode}" if result.returncode < 0
                else f"exit status {result.returncode}"
            )
            pytest.fail(
                f"isolated run of {item.nodeid} failed ({how}):\n{result.stdout[-6000:]}"
                f"\n{result.stderr[-3000:]}",
                pytrace=False,
            )

    # The hook wrapper must yield exactly once; swap the test function for
    # the check while the real call happens.
    original = item.runtest  # type: ignore[attr-defined]
    item.runtest = check  # type: ignore[method-assign]
    try:
        yield
    finally:
        item.runtest = original  # type: ignore[method-assign]
