"""ABI fidelity: every exported constant and struct layout equals the C headers'.

One C program is generated from the Python definitions, compiled against the
system headers, and run; it prints each constant's value and each struct's
size and field offsets, which are compared with Python's.  Every enum class
in the package must be listed in ENUMS, so a new constant cannot go unchecked.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import subprocess
from pathlib import Path

import pytest

import rsyscall
from rsyscall.struct import Layout, Struct

# Every header a checked definition needs.
HEADERS = [
    "stddef.h",
    "stdio.h",
    "unistd.h",
    "fcntl.h",
    "sys/syscall.h",
    "sys/types.h",
    "sys/socket.h",
    "sys/un.h",
    "sys/uio.h",
    "netinet/in.h",
    "netinet/ip.h",
    "netinet/tcp.h",
    "time.h",
    "sys/stat.h",
    "dirent.h",
    "sys/epoll.h",
    "sys/mman.h",
    "sys/resource.h",
    "signal.h",
    "sched.h",
    "linux/sched.h",
    "sys/eventfd.h",
    "sys/timerfd.h",
    "sys/signalfd.h",
    "sys/inotify.h",
    "linux/futex.h",
    "limits.h",
    "sys/wait.h",
    "sys/pidfd.h",
    "sys/ioctl.h",
    "net/if.h",
    "sys/mount.h",
    "sys/prctl.h",
    "linux/capability.h",
    "sys/utsname.h",
    "linux/openat2.h",
    "linux/close_range.h",
    "sys/time.h",
    "linux/seccomp.h",
    "linux/filter.h",
    "linux/audit.h",
    "linux/landlock.h",
    "linux/netlink.h",
    "linux/rtnetlink.h",
    "linux/if_addr.h",
    "linux/if_tun.h",
    "linux/falloc.h",
    "sys/xattr.h",
    "linux/limits.h",
    "sys/ptrace.h",
    "sys/user.h",
    "elf.h",
]

# Enum class (module.qualname) -> how a member's C name is spelled.
ENUMS: dict[str, str] = {
    "rsyscall.near.sysnum.SYS": "__NR_{}",
    "rsyscall.fcntl.O": "O_{}",
    "rsyscall.fcntl.AT": "AT_{}",
    "rsyscall.linux.openat2.RESOLVE": "RESOLVE_{}",
    "rsyscall.linux.close_range.CLOSE_RANGE": "CLOSE_RANGE_{}",
    "rsyscall.stdio.RENAME": "RENAME_{}",
    "rsyscall.sys.resource.RUSAGE": "RUSAGE_{}",
    "rsyscall.fcntl.F": "F_{}",
    "rsyscall.fcntl.FD": "FD_{}",
    "rsyscall.fcntl.SEAL": "F_SEAL_{}",
    "rsyscall.fcntl.FlockType": "F_{}",
    "rsyscall.fcntl.F_OWNER": "F_OWNER_{}",
    "rsyscall.fcntl.SEEK": "SEEK_{}",
    "rsyscall.unistd.OK": "{}_OK",
    "rsyscall.sys.uio.RWF": "RWF_{}",
    "rsyscall.sys.socket.AF": "AF_{}",
    "rsyscall.sys.socket.SOCK": "SOCK_{}",
    "rsyscall.sys.socket.MSG": "MSG_{}",
    "rsyscall.sys.socket.SHUT": "SHUT_{}",
    "rsyscall.sys.socket.SOL": "SOL_{}",
    "rsyscall.sys.socket.SO": "SO_{}",
    "rsyscall.sys.socket.SCM": "SCM_{}",
    "rsyscall.netinet.in_.IPPROTO": "IPPROTO_{}",
    "rsyscall.netinet.in_.INADDR": "INADDR_{}",
    "rsyscall.netinet.in_.IPV6": "IPV6_{}",
    "rsyscall.netinet.ip.IP": "IP_{}",
    "rsyscall.netinet.tcp.TCP": "TCP_{}",
    "rsyscall.time.CLOCK": "CLOCK_{}",
    "rsyscall.sys.stat.S": "S_{}",
    "rsyscall.sys.stat.STATX": "STATX_{}",
    "rsyscall.sys.stat.STATX_ATTR": "STATX_ATTR_{}",
    "rsyscall.dirent.DT": "DT_{}",
    "rsyscall.sys.epoll.EPOLL": "EPOLL{}",
    "rsyscall.sys.epoll.EPOLL_CTL": "EPOLL_CTL_{}",
    "rsyscall.sys.epoll.EPOLL_CREATE": "EPOLL_{}",
    "rsyscall.sys.mman.PROT": "PROT_{}",
    "rsyscall.sys.mman.MAP": "MAP_{}",
    "rsyscall.sys.mman.MADV": "MADV_{}",
    "rsyscall.sys.mman.MFD": "MFD_{}",
    "rsyscall.sys.resource.PRIO": "PRIO_{}",
    "rsyscall.sys.resource.RLIMIT": "RLIMIT_{}",
    "rsyscall.signal.SIG": "SIG{}",
    "rsyscall.signal.SA": "SA_{}",
    "rsyscall.signal.HowSIG": "SIG_{}",
    "rsyscall.signal.Sighandler": "SIG_{}",
    "rsyscall.signal.SI": "SI_{}",
    "rsyscall.signal.SS": "SS_{}",
    "rsyscall.sys.eventfd.EFD": "EFD_{}",
    "rsyscall.sys.timerfd.TFD": "TFD_{}",
    "rsyscall.sys.timerfd.TFD_TIMER": "TFD_TIMER_{}",
    "rsyscall.time.TIMER": "TIMER_{}",
    "rsyscall.sys.signalfd.SFD": "SFD_{}",
    "rsyscall.sys.inotify.IN": "IN_{}",
    "rsyscall.linux.futex.FUTEX": "FUTEX_{}",
    "rsyscall.linux.futex.FUTEX_OP": "FUTEX_OP_{}",
    "rsyscall.linux.futex.FUTEX_OP_CMP": "FUTEX_OP_CMP_{}",
    "rsyscall.sched.CLONE": "CLONE_{}",
    "rsyscall.sched.SCHED": "SCHED_{}",
    "rsyscall.sched.SCHED_FLAG": "SCHED_FLAG_{}",
    "rsyscall.sys.wait.P": "P_{}",
    "rsyscall.sys.wait.W": "W{}",
    "rsyscall.sys.wait.CLD": "CLD_{}",
    "rsyscall.sys.pidfd.PIDFD": "PIDFD_{}",
    "rsyscall.sys.ioctl.FIO": "FIO{}",
    "rsyscall.sys.ioctl.IOC": "_IOC_{}",
    "rsyscall.net.if_.IFF": "IFF_{}",
    "rsyscall.net.if_.SIOC": "SIOC{}",
    "rsyscall.sys.mount.MS": "MS_{}",
    "rsyscall.sys.mount.MNT": "MNT_{}",
    "rsyscall.sys.mount.OPEN_TREE": "OPEN_TREE_{}",
    "rsyscall.sys.mount.MOVE_MOUNT": "MOVE_MOUNT_{}",
    "rsyscall.sys.mount.FSOPEN": "FSOPEN_{}",
    "rsyscall.sys.mount.FSPICK": "FSPICK_{}",
    "rsyscall.sys.mount.FSCONFIG": "FSCONFIG_{}",
    "rsyscall.sys.mount.FSMOUNT": "FSMOUNT_{}",
    "rsyscall.sys.mount.MOUNT_ATTR": "MOUNT_ATTR_{}",
    "rsyscall.sys.prctl.PR": "PR_{}",
    "rsyscall.sys.prctl.PR_CAP_AMBIENT": "PR_CAP_AMBIENT_{}",
    "rsyscall.linux.capability.CAP": "CAP_{}",
    "rsyscall.linux.seccomp.SECCOMP": "SECCOMP_{}",
    "rsyscall.linux.seccomp.SECCOMP_MODE": "SECCOMP_MODE_{}",
    "rsyscall.linux.seccomp.SECCOMP_FILTER_FLAG": "SECCOMP_FILTER_FLAG_{}",
    "rsyscall.linux.seccomp.SECCOMP_RET": "SECCOMP_RET_{}",
    "rsyscall.linux.seccomp.SECCOMP_USER_NOTIF_FLAG": "SECCOMP_USER_NOTIF_FLAG_{}",
    "rsyscall.linux.seccomp.SECCOMP_ADDFD_FLAG": "SECCOMP_ADDFD_FLAG_{}",
    "rsyscall.linux.seccomp.SECCOMP_IOCTL": "SECCOMP_IOCTL_{}",
    "rsyscall.linux.audit.AUDIT_ARCH": "AUDIT_ARCH_{}",
    "rsyscall.linux.filter.BPF_CLASS": "BPF_{}",
    "rsyscall.linux.filter.BPF_SIZE": "BPF_{}",
    "rsyscall.linux.filter.BPF_MODE": "BPF_{}",
    "rsyscall.linux.filter.BPF_ALU_OP": "BPF_{}",
    "rsyscall.linux.filter.BPF_JMP_OP": "BPF_{}",
    "rsyscall.linux.filter.BPF_SRC": "BPF_{}",
    "rsyscall.linux.filter.BPF_RVAL": "BPF_{}",
    "rsyscall.linux.filter.BPF_MISCOP": "BPF_{}",
    "rsyscall.linux.landlock.LANDLOCK_CREATE_RULESET": "LANDLOCK_CREATE_RULESET_{}",
    "rsyscall.linux.landlock.LANDLOCK_RULE": "LANDLOCK_RULE_{}",
    "rsyscall.linux.landlock.LANDLOCK_ACCESS_FS": "LANDLOCK_ACCESS_FS_{}",
    "rsyscall.linux.landlock.LANDLOCK_ACCESS_NET": "LANDLOCK_ACCESS_NET_{}",
    "rsyscall.linux.landlock.LANDLOCK_SCOPE": "LANDLOCK_SCOPE_{}",
    "rsyscall.linux.landlock.LANDLOCK_RESTRICT_SELF": "LANDLOCK_RESTRICT_SELF_{}",
    "rsyscall.linux.netlink.NETLINK": "NETLINK_{}",
    "rsyscall.linux.netlink.NETLINK_OPT": "NETLINK_{}",
    "rsyscall.linux.netlink.NLM_F": "NLM_F_{}",
    "rsyscall.linux.netlink.NLMSG": "NLMSG_{}",
    "rsyscall.linux.netlink.NLMSGERR_ATTR": "NLMSGERR_ATTR_{}",
    "rsyscall.linux.rtnetlink.RTM": "RTM_{}",
    "rsyscall.linux.rtnetlink.RTN": "RTN_{}",
    "rsyscall.linux.rtnetlink.RTPROT": "RTPROT_{}",
    "rsyscall.linux.rtnetlink.RT_SCOPE": "RT_SCOPE_{}",
    "rsyscall.linux.rtnetlink.RT_TABLE": "RT_TABLE_{}",
    "rsyscall.linux.if_tun.IFF": "IFF_{}",
    "rsyscall.linux.if_tun.TUN": "TUN{}",
    "rsyscall.sys.mman.MS": "MS_{}",
    "rsyscall.sys.mman.MREMAP": "MREMAP_{}",
    "rsyscall.sys.mman.MCL": "MCL_{}",
    "rsyscall.sys.mman.MLOCK": "MLOCK_{}",
    "rsyscall.sys.mman.PKEY": "PKEY_{}",
    "rsyscall.fcntl.POSIX_FADV": "POSIX_FADV_{}",
    "rsyscall.fcntl.FALLOC_FL": "FALLOC_FL_{}",
    "rsyscall.fcntl.SPLICE_F": "SPLICE_F_{}",
    "rsyscall.fcntl.SYNC_FILE_RANGE": "SYNC_FILE_RANGE_{}",
    "rsyscall.sys.xattr.XATTR": "XATTR_{}",
    "rsyscall.sys.ptrace.PTRACE": "PTRACE_{}",
    "rsyscall.sys.ptrace.PTRACE_O": "PTRACE_O_{}",
    "rsyscall.sys.ptrace.PTRACE_EVENT": "PTRACE_EVENT_{}",
    "rsyscall.sys.ptrace.PTRACE_SYSCALL_INFO": "PTRACE_SYSCALL_INFO_{}",
    "rsyscall.sys.ptrace.PTRACE_PEEKSIGINFO": "PTRACE_PEEKSIGINFO_{}",
    "rsyscall.sys.ptrace.NT": "NT_{}",
}

# Members whose C names do not follow their class's pattern.
MEMBER_SPELLINGS = {
    "rsyscall.sys.wait.W.NOTHREAD": "__WNOTHREAD",
    "rsyscall.sys.wait.W.ALL": "__WALL",
    "rsyscall.sys.wait.W.CLONE": "__WCLONE",
    "rsyscall.sys.mount.MNT.NOFOLLOW": "UMOUNT_NOFOLLOW",
    "rsyscall.sys.mount.OPEN_TREE.SYMLINK_NOFOLLOW": "AT_SYMLINK_NOFOLLOW",
    "rsyscall.sys.mount.OPEN_TREE.NO_AUTOMOUNT": "AT_NO_AUTOMOUNT",
    "rsyscall.sys.mount.OPEN_TREE.EMPTY_PATH": "AT_EMPTY_PATH",
    "rsyscall.sys.mount.OPEN_TREE.RECURSIVE": "AT_RECURSIVE",
}

# Kernel definitions that <asm/signal.h> has and <signal.h> (glibc) lacks or
# defines differently; they are checked by a second program that includes
# only the kernel header.
KERNEL_SIGNAL_ENUM_MEMBERS = {"rsyscall.signal.SA.RESTORER", "rsyscall.signal.SS.AUTODISARM"}

# Module-level integer constants: (module, attribute) -> C expression.
CONSTANTS: dict[tuple[str, str], str] = {
    ("rsyscall.fcntl", "AT_FDCWD"): "AT_FDCWD",
    ("rsyscall.sys.stat", "UTIME_NOW"): "UTIME_NOW",
    ("rsyscall.sys.stat", "UTIME_OMIT"): "UTIME_OMIT",
    ("rsyscall.sys.uio", "UIO_MAXIOV"): "UIO_MAXIOV",
    ("rsyscall.sys.resource", "RLIM_INFINITY"): "RLIM_INFINITY",
    ("rsyscall.signal", "NSIG"): "NSIG",
    ("rsyscall.sched", "CPU_SETSIZE"): "CPU_SETSIZE",
    ("rsyscall.sys.inotify", "NAME_MAX"): "NAME_MAX",
    ("rsyscall.net.if_", "IFNAMSIZ"): "IFNAMSIZ",
    ("rsyscall.linux.capability", "_LINUX_CAPABILITY_VERSION_3"): "_LINUX_CAPABILITY_VERSION_3",
    ("rsyscall.linux.capability", "CAP_LAST_CAP"): "CAP_LAST_CAP",
    ("rsyscall.sys.utsname", "UTSNAME_LENGTH"): "_UTSNAME_LENGTH",
    ("rsyscall.linux.futex", "FUTEX_CMD_MASK"): "FUTEX_CMD_MASK",
    ("rsyscall.linux.futex", "FUTEX_BITSET_MATCH_ANY"): "FUTEX_BITSET_MATCH_ANY",
    ("rsyscall.linux.futex", "FUTEX_WAITERS"): "FUTEX_WAITERS",
    ("rsyscall.linux.futex", "FUTEX_OWNER_DIED"): "FUTEX_OWNER_DIED",
    ("rsyscall.linux.futex", "FUTEX_TID_MASK"): "FUTEX_TID_MASK",
    ("rsyscall.linux.futex", "ROBUST_LIST_LIMIT"): "ROBUST_LIST_LIMIT",
    ("rsyscall.sys.mount", "MOUNT_ATTR_SIZE_VER0"): "MOUNT_ATTR_SIZE_VER0",
    ("rsyscall.linux.seccomp", "SECCOMP_RET_ACTION_FULL"): "SECCOMP_RET_ACTION_FULL",
    ("rsyscall.linux.seccomp", "SECCOMP_RET_ACTION"): "SECCOMP_RET_ACTION",
    ("rsyscall.linux.seccomp", "SECCOMP_RET_DATA"): "SECCOMP_RET_DATA",
    ("rsyscall.linux.filter", "BPF_MAXINSNS"): "BPF_MAXINSNS",
    ("rsyscall.linux.filter", "BPF_MEMWORDS"): "BPF_MEMWORDS",
}

# Definitions newer than some headers: the running kernel may know more
# than the installed <linux/*.h> (Landlock ABI 7 against 6.1 headers, ABI
# 2).  Each key is checked only where the headers define the macro given
# (its own name, or one of the same ABI version for an enumerator or a
# struct field); `newer_than_headers` lists what went unchecked.
_LANDLOCK_NET = "LANDLOCK_ACCESS_NET_BIND_TCP"
_LANDLOCK_SCOPE = "LANDLOCK_SCOPE_SIGNAL"
NEWER_THAN_HEADERS: dict[str, str] = {
    "rsyscall.linux.landlock.LANDLOCK_ACCESS_FS.TRUNCATE": "LANDLOCK_ACCESS_FS_TRUNCATE",
    "rsyscall.linux.landlock.LANDLOCK_ACCESS_FS.IOCTL_DEV": "LANDLOCK_ACCESS_FS_IOCTL_DEV",
    "rsyscall.linux.landlock.LANDLOCK_ACCESS_NET.BIND_TCP": _LANDLOCK_NET,
    "rsyscall.linux.landlock.LANDLOCK_ACCESS_NET.CONNECT_TCP": "LANDLOCK_ACCESS_NET_CONNECT_TCP",
    "rsyscall.linux.landlock.LANDLOCK_RULE.NET_PORT": _LANDLOCK_NET,
    "rsyscall.linux.landlock.LANDLOCK_SCOPE.ABSTRACT_UNIX_SOCKET":
        "LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET",
    "rsyscall.linux.landlock.LANDLOCK_SCOPE.SIGNAL": _LANDLOCK_SCOPE,
    "rsyscall.linux.landlock.LANDLOCK_RESTRICT_SELF.LOG_SAME_EXEC_OFF":
        "LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF",
    "rsyscall.linux.landlock.LANDLOCK_RESTRICT_SELF.LOG_NEW_EXEC_ON":
        "LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON",
    "rsyscall.linux.landlock.LANDLOCK_RESTRICT_SELF.LOG_SUBDOMAINS_OFF":
        "LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF",
    "rsyscall.linux.landlock.LandlockRulesetAttr.sizeof": _LANDLOCK_SCOPE,
    "rsyscall.linux.landlock.LandlockRulesetAttr.handled_access_net": _LANDLOCK_NET,
    "rsyscall.linux.landlock.LandlockRulesetAttr.scoped": _LANDLOCK_SCOPE,
    "rsyscall.linux.landlock.LandlockNetPortAttr.sizeof": _LANDLOCK_NET,
    "rsyscall.linux.landlock.LandlockNetPortAttr.allowed_access": _LANDLOCK_NET,
    "rsyscall.linux.landlock.LandlockNetPortAttr.port": _LANDLOCK_NET,
    ("rsyscall.linux.netlink", "NLMSG_ALIGNTO"): "NLMSG_ALIGNTO",
    ("rsyscall.linux.netlink", "NLMSG_HDRLEN"): "NLMSG_HDRLEN",
    ("rsyscall.linux.rtnetlink", "_IFA_F_NODAD"): "IFA_F_NODAD",
    ("rsyscall.fcntl", "MAX_HANDLE_SZ"): "MAX_HANDLE_SZ",
    ("rsyscall.sys.xattr", "XATTR_NAME_MAX"): "XATTR_NAME_MAX",
    ("rsyscall.sys.xattr", "XATTR_SIZE_MAX"): "XATTR_SIZE_MAX",
    ("rsyscall.sys.xattr", "XATTR_LIST_MAX"): "XATTR_LIST_MAX",
}

# Members that are the library's own "no flags" value, with no C name.
LIBRARY_ONLY = {"NONE"}


def all_modules() -> list[str]:
    names = ["rsyscall"]
    for info in pkgutil.walk_packages(rsyscall.__path__, "rsyscall."):
        names.append(info.name)
    for name in names:
        importlib.import_module(name)
    return names


def package_enums() -> dict[str, type[enum.IntEnum] | type[enum.IntFlag]]:
    found: dict[str, type[enum.IntEnum] | type[enum.IntFlag]] = {}
    for name in all_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, enum.IntEnum | enum.IntFlag)
                and value.__module__ == name
                and len(value.__members__) > 0  # not the member-less base classes
            ):
                found[f"{name}.{value.__qualname__}"] = value
    return found


def package_layouts() -> list[type]:
    """Every class in the package that declares a C layout of its own:
    all Structs, and variable-length records like Dirent."""
    found: dict[str, type] = {}
    for name in all_modules():
        for value in vars(importlib.import_module(name)).values():
            if (
                isinstance(value, type)
                and value.__module__.startswith("rsyscall")
                and isinstance(value.__dict__.get("layout"), Layout)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def package_structs() -> list[type[Struct]]:
    return [cls for cls in package_layouts() if issubclass(cls, Struct)]


def c_program(expressions: list[tuple[str, str]], headers: list[str] = HEADERS) -> str:
    lines = ["#define _GNU_SOURCE"]
    lines += [f"#include <{header}>" for header in headers]
    lines.append("int main(void) {")
    for key, expression in expressions:
        guard = NEWER_THAN_HEADERS.get(key)
        if guard is not None:
            lines.append(f"#ifdef {guard}")
        lines.append(f'    printf("%s %lld\\n", "{key}", (long long)({expression}));')
        if guard is not None:
            lines.append("#endif")
    lines.append("    return 0;\n}")
    return "\n".join(lines) + "\n"


def run_c(
    expressions: list[tuple[str, str]], tmp_path: Path, headers: list[str] = HEADERS
) -> dict[str, int]:
    source = tmp_path / "abi.c"
    binary = tmp_path / "abi"
    source.write_text(c_program(expressions, headers))
    subprocess.run(["gcc", "-w", "-o", str(binary), str(source)], check=True)
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return {key: int(value) for key, value in (line.split() for line in output.splitlines())}


MASK = (1 << 64) - 1


def newer_than_headers(expected: dict[str, int], actual: dict[str, int]) -> dict[str, int]:
    """`expected` without the NEWER_THAN_HEADERS keys these headers lack
    (printed: run with -s to see them)."""
    missing = sorted(key for key in expected if key in NEWER_THAN_HEADERS and key not in actual)
    if missing:
        print("newer than the installed headers, unchecked:", ", ".join(missing))
    return {key: value for key, value in expected.items() if key not in missing}


def test_every_enum_is_checked() -> None:
    missing = sorted(set(package_enums()) - set(ENUMS))
    assert not missing, f"enum classes with no entry in ENUMS: {missing}"


def test_constants_match_headers(tmp_path: Path) -> None:
    expected: dict[str, int] = {}
    expressions: list[tuple[str, str]] = []
    for qualified, cls in package_enums().items():
        spelling = ENUMS[qualified]
        for member_name, member in cls.__members__.items():
            if member_name in LIBRARY_ONLY and member.value == 0:
                continue
            key = f"{qualified}.{member_name}"
            if key in KERNEL_SIGNAL_ENUM_MEMBERS:
                continue
            expressions.append((key, MEMBER_SPELLINGS.get(key, spelling.format(member_name))))
            expected[key] = int(member.value)
    for (module, attribute), expression in CONSTANTS.items():
        key = f"{module}.{attribute}"
        expressions.append((key, expression))
        expected[key] = int(getattr(importlib.import_module(module), attribute))
    actual = run_c(expressions, tmp_path)
    expected = newer_than_headers(expected, actual)
    wrong = {
        key: (value, actual[key])
        for key, value in expected.items()
        if value & MASK != actual[key] & MASK
    }
    assert not wrong, f"(python, C) values that differ: {wrong}"
    assert len(expected) > 400  # the syscall table alone has hundreds


def test_struct_layouts_match_headers(tmp_path: Path) -> None:
    expected: dict[str, int] = {}
    expressions: list[tuple[str, str]] = []
    classes = package_layouts()
    assert len(classes) > 10
    for cls in classes:
        layout: Layout = cls.layout  # type: ignore[attr-defined]
        key = f"{cls.__module__}.{cls.__qualname__}.sizeof"
        expressions.append((key, f"sizeof({layout.c_type})"))
        expected[key] = layout.size
        for field, offset in layout.offsets.items():
            key = f"{cls.__module__}.{cls.__qualname__}.{field}"
            expressions.append((key, f"offsetof({layout.c_type}, {field})"))
            expected[key] = offset
    actual = run_c(expressions, tmp_path)
    expected = newer_than_headers(expected, actual)
    wrong = {key: (value, actual[key]) for key, value in expected.items() if value != actual[key]}
    assert not wrong, f"(python, C) layouts that differ: {wrong}"


@pytest.mark.parametrize("cls", package_structs(), ids=lambda cls: cls.__qualname__)
def test_struct_size_is_layout_size(cls: type[Struct]) -> None:
    assert cls.sizeof() == cls.layout.size


def test_kernel_signal_abi(tmp_path: Path) -> None:
    """Sigset and Sigaction are the kernel's (rt_sigaction takes those), not
    glibc's 128-byte sigset_t: check them against <asm/signal.h> alone."""
    from rsyscall.signal import MINSIGSTKSZ, SA, SIGSTKSZ, SS, Sigaction, Sigset

    actual = run_c(
        [
            ("SA_RESTORER", "SA_RESTORER"),
            ("SS_AUTODISARM", "SS_AUTODISARM"),
            ("MINSIGSTKSZ", "MINSIGSTKSZ"),
            ("SIGSTKSZ", "SIGSTKSZ"),
            ("sigset", "sizeof(sigset_t)"),
            ("sigaction", "sizeof(struct sigaction)"),
            ("sa_handler", "offsetof(struct sigaction, sa_handler)"),
            ("sa_flags", "offsetof(struct sigaction, sa_flags)"),
            ("sa_restorer", "offsetof(struct sigaction, sa_restorer)"),
            ("sa_mask", "offsetof(struct sigaction, sa_mask)"),
        ],
        tmp_path,
        ["stddef.h", "stdio.h", "linux/signal.h"],
    )
    assert actual["SA_RESTORER"] == SA.RESTORER
    assert actual["SS_AUTODISARM"] == SS.AUTODISARM
    assert (actual["MINSIGSTKSZ"], actual["SIGSTKSZ"]) == (MINSIGSTKSZ, SIGSTKSZ)
    assert actual["sigset"] == Sigset.sizeof()
    assert actual["sigaction"] == Sigaction.sizeof()
    assert (actual["sa_handler"], actual["sa_flags"], actual["sa_restorer"], actual["sa_mask"]) == (
        0, 8, 16, 24)


def test_sched_attr_abi(tmp_path: Path) -> None:
    """SchedAttr is the kernel's struct sched_attr, whose header
    <linux/sched/types.h> cannot be included with glibc's <sched.h>."""
    from rsyscall.sched import SchedAttr

    fields = ["size", "sched_policy", "sched_flags", "sched_nice", "sched_priority",
              "sched_runtime", "sched_deadline", "sched_period", "sched_util_min",
              "sched_util_max"]
    actual = run_c(
        [("sizeof", "sizeof(struct sched_attr)"), ("VER1", "SCHED_ATTR_SIZE_VER1")]
        + [(field, f"offsetof(struct sched_attr, {field})") for field in fields],
        tmp_path,
        ["stddef.h", "stdio.h", "linux/sched/types.h"],
    )
    assert actual["sizeof"] == actual["VER1"] == SchedAttr.sizeof() == 56
    assert [actual[field] for field in fields] == [0, 4, 8, 16, 20, 24, 32, 40, 48, 52]


def test_ioc_encoding_matches_headers(tmp_path: Path) -> None:
    """rsyscall.sys.ioctl.ioc, ioc_dir and ioc_size against C's _IOC macros."""
    from rsyscall.sys.ioctl import IOC, ioc, ioc_dir, ioc_size

    cases = {
        "ior": ("_IOR('T', 0x30, unsigned int)", (IOC.READ, ord("T"), 0x30, 4)),
        "iow": ("_IOW('T', 0x31, int)", (IOC.WRITE, ord("T"), 0x31, 4)),
        "iowr": ("_IOWR(0x94, 9, struct flock)", (IOC.READ | IOC.WRITE, 0x94, 9, 32)),
        "io": ("_IO('T', 0x41)", (IOC.NONE, ord("T"), 0x41, 0)),
        "big": ("_IOR(0xff, 0xff, char[16383])", (IOC.READ, 0xFF, 0xFF, 16383)),
    }
    expressions = [(key, c) for key, (c, _) in cases.items()]
    expressions += [(f"{key}.dir", f"_IOC_DIR({c})") for key, (c, _) in cases.items()]
    expressions += [(f"{key}.size", f"_IOC_SIZE({c})") for key, (c, _) in cases.items()]
    actual = run_c(expressions, tmp_path)
    for key, (_, args) in cases.items():
        request = ioc(*args)
        assert request == actual[key] & MASK, key
        assert ioc_dir(request) == actual[f"{key}.dir"], key
        assert ioc_size(request) == actual[f"{key}.size"], key
