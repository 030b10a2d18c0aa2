/* Allocation and PointerBase (memory.c), added to rsyscall._native._raw. */
#ifndef RSYS_MEMORY_H
#define RSYS_MEMORY_H
#include <Python.h>

int rsys_add_memory_types(PyObject *module);

#endif
