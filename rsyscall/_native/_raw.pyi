from collections.abc import Awaitable

SERVER_FUNCTION: int
CHILD_MAIN_FUNCTION: int
EXEC_WATCHER_FUNCTION: int
EXEC_MARKER: int
FUTEX_WAITER_FUNCTION: int
STACK_WORDS: int
REQUEST_SIZE: int
RESPONSE_SIZE: int

class Ready:
    def __await__(self) -> object: ...

def syscall(number: int, /, *args: int) -> int: ...
def ready_syscall(number: int, /, *args: int) -> Awaitable[int]: ...
def read_memory(address: int, size: int, /) -> bytes: ...
def write_memory(address: int, data: bytes | bytearray | memoryview, /) -> None: ...
