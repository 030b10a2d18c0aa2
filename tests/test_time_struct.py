"""rsyscall.time: Timespec's byte layout and its float conversions."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsyscall import local_thread
from rsyscall.time import Timespec

pytestmark = pytest.mark.anyio

INT64 = st.integers(-(2**63), 2**63 - 1)


@given(INT64, st.integers(0, 999_999_999))
def test_timespec_bytes_roundtrip(sec: int, nsec: int) -> None:
    ts = Timespec(sec, nsec)
    data = ts.to_bytes()
    assert len(data) == Timespec.sizeof() == 16
    assert Timespec.from_bytes(data) == ts


@given(INT64, INT64)
def test_timespec_nsec_out_of_range_is_a_value_error(sec: int, nsec: int) -> None:
    if 0 <= nsec < 10**9 or nsec in ((1 << 30) - 1, (1 << 30) - 2):
        assert Timespec(sec, nsec).nsec == nsec
    else:
        with pytest.raises(ValueError):
            Timespec(sec, nsec)


def test_timespec_layout() -> None:
    # tv_sec then tv_nsec, little-endian 64-bit each.
    assert Timespec(1, 2).to_bytes() == (1).to_bytes(8, "little") + (2).to_bytes(8, "little")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, Timespec(0, 0)),
        (1.5, Timespec(1, 500_000_000)),
        (2, Timespec(2, 0)),
        (-0.25, Timespec(-1, 750_000_000)),
        (0.9999999999, Timespec(1, 0)),  # rounds up into the next second
        (1e-9, Timespec(0, 1)),
    ],
)
def test_from_float(seconds: float, expected: Timespec) -> None:
    assert Timespec.from_float(seconds) == expected


@given(st.floats(-(2.0**31), 2.0**31, allow_nan=False))
def test_from_float_to_float(seconds: float) -> None:
    ts = Timespec.from_float(seconds)
    assert 0 <= ts.nsec < 1_000_000_000
    # Within half a nanosecond plus the float's own resolution.
    assert math.isclose(ts.to_float(), seconds, rel_tol=1e-15, abs_tol=1e-9)


@given(st.integers(-(2**20), 2**20), st.integers(0, 999_999_999))
def test_to_float_from_float(sec: int, nsec: int) -> None:
    # Below 2**20 seconds (12 days) floats are spaced under half a nanosecond
    # apart; beyond ~2**22 they cannot hold every nanosecond.
    assert Timespec.from_float(Timespec(sec, nsec).to_float()) == Timespec(sec, nsec)


def test_bad_values() -> None:
    with pytest.raises(TypeError):
        Timespec(1.5, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Timespec(0, "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Timespec.from_float("1.5")  # type: ignore[arg-type]
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            Timespec.from_float(bad)
    with pytest.raises(ValueError):
        Timespec(2**63, 0).to_bytes()
    with pytest.raises(ValueError):
        Timespec.from_bytes(b"\0" * 15)


async def test_timespec_through_memory() -> None:
    ts = Timespec(1234, 567)
    ptr = await local_thread.ptr(ts)
    assert ptr.size() == 16
    assert await ptr.read() == ts
