"""The C extension; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rsyscall._native._raw",
            sources=["rsyscall/_native/module.c", "rsyscall/_native/server.c"],
            depends=["rsyscall/_native/rsys.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
