"""The C extension and the static stub; everything else about the package is
in pyproject.toml."""

import os
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = "rsyscall/_native"
STUB_SOURCES = [f"{NATIVE}/stub.c", f"{NATIVE}/server.c"]
STUB_FLAGS = [
    # Freestanding and static: no libc, no loader, no PT_INTERP or PT_DYNAMIC.
    "-static", "-nostdlib", "-nostartfiles", "-ffreestanding", "-fno-pie", "-no-pie",
    "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
    "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
    "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-s",
]


class BuildWithStub(build_ext):
    """build_ext, and then the stub executable next to the extension (in
    the source tree for an editable install, in the build tree for a wheel)."""

    def run(self) -> None:
        super().run()
        extension = self.get_ext_fullpath("rsyscall._native._raw")
        target = os.path.join(os.path.dirname(extension), "rsyscall-stub")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        compiler = os.environ.get("CC", "gcc")
        subprocess.check_call([compiler, *STUB_FLAGS, "-o", target, *STUB_SOURCES])


setup(
    ext_modules=[
        Extension(
            "rsyscall._native._raw",
            sources=[f"{NATIVE}/module.c", f"{NATIVE}/memory.c", f"{NATIVE}/spawn.c", f"{NATIVE}/server.c"],
            depends=[f"{NATIVE}/rsys.h", f"{NATIVE}/memory.h", f"{NATIVE}/spawn.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
    cmdclass={"build_ext": BuildWithStub},
)
