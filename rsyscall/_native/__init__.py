"""The C core: raw syscall entry, syscall-server loop and clone trampoline.

`_raw` is a CPython extension; see rsys.h for the freestanding part that runs
in cloned children.
"""
