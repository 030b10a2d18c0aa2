"""Build the reference site: python tools/build_docs.py OUTDIR (what .ci/docs runs).

pdoc renders the package's own docstrings, a page per module; before it
does, this script adds what a reader of the site needs and a reader of
help() does not: links from every `name(N)` to its man page at man7.org,
a note on each mixin class saying which object its methods belong to, the
C layout of each struct, the members of each enum, the introduction
(docs/index.md) as the top page, and the syscall index page.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import pkgutil
import re
import sys
import types
import warnings
from pathlib import Path

import pdoc
import pdoc.render

import rsyscall
from rsyscall.base import BaseFileDescriptor, BaseTask
from rsyscall.base.process import BaseProcess
from rsyscall.near.sysnum import SYS
from rsyscall.struct import Struct

ROOT = Path(__file__).resolve().parent.parent
MAN_URL = "https://man7.org/linux/man-pages/man{section}/{name}.{section}.html"
# name(N), not preceded by a word character, a dot or a backtick we handle.
_MAN = re.compile(r"(?<![\w.\[/])(`?)([a-z_][a-z0-9_]*)\(([2-8])\)\1")
_LOCAL_MAN = Path("/usr/share/man")

# ---- which syscalls are not wrapped, and why ----

OBSOLETE = {
    "open": "openat", "creat": "openat", "stat": "newfstatat", "lstat": "newfstatat",
    "access": "faccessat2", "faccessat": "faccessat2", "pipe": "pipe2", "select": "epoll or ppoll",
    "poll": "ppoll", "dup2": "dup3", "mkdir": "mkdirat", "rmdir": "unlinkat",
    "unlink": "unlinkat", "rename": "renameat2", "renameat": "renameat2", "link": "linkat",
    "symlink": "symlinkat", "readlink": "readlinkat", "chmod": "fchmodat",
    "chown": "fchownat", "lchown": "fchownat", "mknod": "mknodat", "utime": "utimensat",
    "utimes": "utimensat", "futimesat": "utimensat", "getdents": "getdents64",
    "epoll_create": "epoll_create1", "epoll_wait": "epoll_pwait", "signalfd": "signalfd4",
    "eventfd": "eventfd2", "inotify_init": "inotify_init1", "accept": "accept4",
    "fork": "clone3", "vfork": "clone3", "wait4": "waitid", "alarm": "timerfd_create",
    "pause": "rt_sigsuspend", "time": "clock_gettime", "gettimeofday": "clock_gettime",
    "settimeofday": "clock_settime", "getrlimit": "prlimit64", "setrlimit": "prlimit64",
    "sysfs": "/proc/filesystems", "ustat": "statfs", "tkill": "tgkill",
    "getpgrp": "getpgid(0)", "_sysctl": "/proc/sys", "uselib": "(a.out libraries: none)",
    "oldumount": "umount2", "umount": "umount2", "sendfile": "copy_file_range or splice",
    "epoll_pwait": "epoll_pwait2", "signal": "rt_sigaction", "sigaction": "rt_sigaction",
    "pselect6": "epoll or ppoll", "remap_file_pages": "mmap",
}
KERNEL_INTERNAL = {
    "restart_syscall": "made by the kernel itself when it restarts a syscall",
    "rt_sigreturn": "returns from a signal handler; made by the handler's restorer",
    "set_thread_area": "TLS setup, owned by the C library",
    "get_thread_area": "TLS setup, owned by the C library",
    "arch_prctl": "TLS setup, owned by the C library (changing FS breaks Python)",
    "set_tid_address": "used by the library itself for exec detection",
    "modify_ldt": "16-bit segments: not for Python programs",
    "iopl": "port I/O privilege level: hardware access, not for Python programs",
    "ioperm": "port I/O permissions: hardware access, not for Python programs",
    "rseq": "restartable sequences, owned by the C library",
}
UNIMPLEMENTED = {
    "afs_syscall", "tuxcall", "security", "vserver", "putpmsg", "getpmsg",
    "create_module", "get_kernel_syms", "query_module", "nfsservctl",
    "epoll_ctl_old", "epoll_wait_old", "lookup_dcookie",
}


def _modules() -> list[str]:
    names = ["rsyscall"]
    for info in pkgutil.walk_packages(rsyscall.__path__, "rsyscall."):
        name = info.name
        if any(part.startswith("_") for part in name.split(".")[1:]):
            continue
        names.append(name)
    return sorted(names)


def _object_of(cls: type) -> str | None:
    """Which public object a mixin's methods are methods of."""
    if issubclass(cls, BaseTask):
        return "Task"
    if issubclass(cls, BaseFileDescriptor):
        return "FileDescriptor"
    if issubclass(cls, BaseProcess):
        return "Process"
    return None


def _man_link(match: re.Match[str]) -> str:
    tick, name, section = match.groups()
    text = f"{tick}{name}({section}){tick}"
    if _LOCAL_MAN.is_dir() and not list(_LOCAL_MAN.glob(f"man{section}/{name}.{section}*")):
        return text  # not a man page this machine knows: leave it as it is
    return f"[{text}]({MAN_URL.format(section=section, name=name)})"


_HEADER = re.compile(r"(?<!`)<([a-z0-9_/]+\.h)>(?!`)")


def link_man_pages(doc: str) -> str:
    """`name(N)` as links and <header.h> as code (markdown would take it
    for a tag), outside code blocks."""
    lines = inspect.cleandoc(doc).splitlines()
    in_fence = False
    out = []
    for line in lines:
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if in_fence or line.startswith("    "):
            out.append(line)
        else:
            out.append(_HEADER.sub(r"`<\1>`", _MAN.sub(_man_link, line)))
    return "\n".join(out)


def _struct_table(cls: type[Struct]) -> str:
    layout = cls.layout
    rows = [f"| `{name}` | `{code}` | {layout.offsets.get(name, '')} |"
            for name, code in layout.fields if not name.startswith("_")]
    return (f"\n\n`{layout.c_type}`, {layout.size} bytes, fields in C order:\n\n"
            "| C field | struct code | offset |\n| --- | --- | --- |\n" + "\n".join(rows))


def prepare(modules: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Rewrite docstrings for the site; returns, for each syscall name, the
    methods that make it: (object, module, qualified name)."""
    seen: set[int] = set()
    for name in modules:
        module = importlib.import_module(name)
        if module.__doc__:
            module.__doc__ = link_man_pages(module.__doc__)
        for _, value in vars(module).items():
            if not inspect.isclass(value) or value.__module__ != name or id(value) in seen:
                continue
            seen.add(id(value))
            doc = value.__doc__ or ""
            owner = _object_of(value)
            if owner is not None and value.__name__ not in ("Task", "FileDescriptor", "Process"):
                doc = (f"Methods of `rsyscall.{owner}` (the {owner} class is made of the "
                       f"header modules' mixins; call them on a {owner}).\n\n") + doc
            if issubclass(value, Struct) and getattr(value, "layout", None) is not None:
                doc += _struct_table(value)
            value.__doc__ = link_man_pages(doc) if doc else doc
            for member in vars(value).values():
                function = member
                if isinstance(member, (staticmethod, classmethod)):
                    function = member.__func__
                if inspect.isfunction(function) and function.__doc__:
                    try:
                        function.__doc__ = link_man_pages(function.__doc__)
                    except AttributeError:
                        pass
    return _syscall_methods(modules)


def _syscall_methods(modules: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    found: dict[str, list[tuple[str, str, str]]] = {}
    for name in modules:
        module = importlib.import_module(name)
        source_file = getattr(module, "__file__", None)
        if not source_file or not source_file.endswith(".py"):
            continue
        tree = ast.parse(Path(source_file).read_text())
        aliases: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                sys_name = _sys_attribute(node.value)
                if isinstance(target, ast.Name) and sys_name:
                    aliases[target.id] = sys_name
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            cls = getattr(module, node.name, None)
            owner = (_object_of(cls) if inspect.isclass(cls) else None) or node.name
            for item in node.body:
                if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if item.name.startswith("_"):
                    continue
                used = set()
                for inner in ast.walk(item):
                    sys_name = _sys_attribute(inner)
                    if sys_name:
                        used.add(sys_name)
                    elif isinstance(inner, ast.Name) and inner.id in aliases:
                        used.add(aliases[inner.id])
                for sys_name in used:
                    found.setdefault(sys_name, []).append((owner, name, f"{node.name}.{item.name}"))
    return found


def _sys_attribute(node: ast.AST) -> str | None:
    """"read" for SYS.read or int(SYS.read)."""
    if isinstance(node, ast.Call) and len(node.args) == 1:
        node = node.args[0]
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "SYS" and node.attr in SYS.__members__):
        return node.attr
    return None


_PUBLIC = {"Task", "FileDescriptor", "Process", "MemoryMapping", "Thread", "ChildThread",
           "AsyncFileDescriptor", "AsyncChildProcess", "Epoller"}


def index_page(methods: dict[str, list[tuple[str, str, str]]]) -> str:
    rows = []
    counts = {"wrapped": 0, "obsolete": 0, "internal": 0, "unimplemented": 0, "not yet": 0}
    for number in sorted(SYS, key=int):
        name = number.name
        man = _man_link(re.match(r"(`?)([a-z_0-9]+)\(([2-8])\)\1", f"{name}(2)"))  # type: ignore[arg-type]
        if name in methods:
            counts["wrapped"] += 1
            cells = []
            entries = sorted(set(methods[name]))
            # The public objects' methods, where there are some; the
            # library's own machinery only where nothing else makes it.
            public = [entry for entry in entries if entry[0] in _PUBLIC]
            for owner, module, qualified in public or entries:
                page = module.removeprefix("rsyscall.").replace(".", "/") + ".html"
                # Plain link text: pdoc would link code spans on its own.
                # The dot escaped: pdoc would take `Class.name` in the
                # address for a name to link.
                anchor = qualified.replace(".", "%2E")
                label = f"{owner}.{qualified.split('.')[1]}"
                if qualified.split(".")[0] in getattr(importlib.import_module(module), "__all__",
                                                      ()):
                    cells.append(f"[{label}]({page}#{anchor}) ({module})")
                else:  # a class its module does not export: no page of its own
                    cells.append(f"{label} ({module})")
            status = "; ".join(cells)
        elif name in OBSOLETE:
            counts["obsolete"] += 1
            status = f"obsolete: use {OBSOLETE[name]}"
        elif name in KERNEL_INTERNAL:
            counts["internal"] += 1
            status = f"not for callers: {KERNEL_INTERNAL[name]}"
        elif name in UNIMPLEMENTED:
            counts["unimplemented"] += 1
            status = "not implemented by Linux (returns ENOSYS)"
        else:
            counts["not yet"] += 1
            status = "not wrapped yet (`task.sysif.syscall(SYS." + name + ", ...)` reaches it)"
        rows.append(f"| {int(number)} | {man} | {status} |")
    summary = ", ".join(f"{count} {what}" for what, count in counts.items())
    return (
        "# Syscall index\n\n"
        f"Every name of the x86_64 syscall table ({len(SYS)}: {summary}), with the "
        "method that makes it and its module, or why there is none.\n\n"
        "| number | syscall | in rsyscall |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )


def build(output: Path) -> None:
    # pdoc cannot evaluate the annotations that name TYPE_CHECKING imports;
    # it shows them as written, which is what a reader wants anyway.
    warnings.filterwarnings("ignore", module="pdoc")
    modules = _modules()
    methods = prepare(modules)
    rsyscall.__doc__ = link_man_pages((ROOT / "docs" / "index.md").read_text())
    index = types.ModuleType("rsyscall.syscall_index", index_page(methods))
    index.__spec__ = importlib.machinery.ModuleSpec("rsyscall.syscall_index", None)
    sys.modules["rsyscall.syscall_index"] = index
    rsyscall.syscall_index = index  # type: ignore[attr-defined]
    pdoc.render.configure(
        docformat="markdown",
        footer_text="rsyscall for Python",
        search=True,
        show_source=False,
    )
    output.mkdir(parents=True, exist_ok=True)
    pdoc.pdoc(*modules, "rsyscall.syscall_index", output_directory=output)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tools/build_docs.py OUTDIR")
    build(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
