import pytest

from rsyscall import local_thread

pytestmark = pytest.mark.anyio


async def test_getpid_pipe_roundtrip() -> None:
    import os

    assert await local_thread.task.getpid() == os.getpid()
    pipe = await local_thread.pipe()
    _, rest = await pipe.write.write(await local_thread.ptr(b"hello"))
    assert rest.size() == 0
    valid, rest = await pipe.read.read(await local_thread.malloc(bytes, 16))
    assert await valid.read() == b"hello"
