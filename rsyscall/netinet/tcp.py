"""<netinet/tcp.h>: IPPROTO_TCP socket options (tcp(7))."""


from rsyscall._enum import IntEnum
from rsyscall.netinet.in_ import IPPROTO
from rsyscall.sys.socket import _define_options

__all__ = ["TCP"]


class TCP(IntEnum):
    """IPPROTO_TCP socket options."""

    NODELAY = 1
    MAXSEG = 2
    CORK = 3
    KEEPIDLE = 4
    KEEPINTVL = 5
    KEEPCNT = 6
    SYNCNT = 7
    LINGER2 = 8
    DEFER_ACCEPT = 9
    WINDOW_CLAMP = 10
    INFO = 11
    QUICKACK = 12
    CONGESTION = 13
    USER_TIMEOUT = 18
    FASTOPEN = 23


# None of these options' values holds an address (TCP_ZEROCOPY_RECEIVE's
# does, and is left out): setsockopt and getsockopt take them.
# Their values are C ints, but TCP.CONGESTION's (the algorithm's name, a
# str) and TCP.INFO's (struct tcp_info, read as bytes).
_define_options(IPPROTO.TCP, TCP, {TCP.CONGESTION: (str,), TCP.INFO: ()})
