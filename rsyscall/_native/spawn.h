/* rsyscall._native._raw.spawn (spawn.c): clone and exec in one call. */
#ifndef RSYS_SPAWN_H
#define RSYS_SPAWN_H
#include <Python.h>

PyObject *rsys_raw_spawn(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int rsys_add_spawn_types(PyObject *module);

#endif
