/* rsyscall._native._raw: the Python face of the freestanding core.
 *
 * The local thread's syscalls come through here, so every entry is a
 * METH_FASTCALL function that converts its integer arguments, makes the
 * system call and turns a -errno result into OSError.  `Ready` lets the local
 * syscall interface hand back an awaitable that is already complete, without
 * the cost of a Python coroutine. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <ucontext.h>

#include "rsys.h"

/* The interrupt handler (server.c) has no libc headers; check the offsets
 * it uses against them here. */
_Static_assert(offsetof(ucontext_t, uc_mcontext.gregs) == RSYS_UC_GREGS_OFFSET,
               "ucontext_t gregs offset");
_Static_assert(REG_R12 == RSYS_REG_R12 && REG_RBX == RSYS_REG_RBX &&
               REG_RAX == RSYS_REG_RAX && REG_RIP == RSYS_REG_RIP,
               "gregs indexes");
_Static_assert(offsetof(siginfo_t, si_code) == RSYS_SI_CODE_OFFSET, "si_code offset");
_Static_assert(offsetof(siginfo_t, si_value) == RSYS_SI_VALUE_OFFSET, "si_value offset");
_Static_assert(SI_QUEUE == RSYS_SI_QUEUE && SIGURG == RSYS_INTERRUPT_SIGNAL, "signal constants");

/* Convert a Python int (or int-like enum) to a register value.  Values from
 * -2**63 to 2**64-1 are accepted: registers carry both signed and unsigned
 * quantities. */
static int to_register(PyObject *obj, long *out)
{
    int overflow = 0;
    long value = PyLong_AsLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0) {
        unsigned long uvalue = PyLong_AsUnsignedLong(obj);
        if (uvalue == (unsigned long)-1 && PyErr_Occurred())
            return -1;
        value = (long)uvalue;
    } else if (overflow < 0) {
        PyErr_SetString(PyExc_OverflowError,
                        "syscall argument is below -2**63");
        return -1;
    }
    *out = value;
    return 0;
}

static PyObject *raise_errno(long err)
{
    PyObject *args = Py_BuildValue("(is)", (int)err, strerror((int)err));
    if (args != NULL) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

/* Parse (number, a1..a6) and run the syscall.  Returns 0 and sets *result,
 * or -1 with a Python exception set. */
static int do_syscall(PyObject *const *args, Py_ssize_t nargs, long *result)
{
    long regs[7] = {0, 0, 0, 0, 0, 0, 0};
    if (nargs < 1 || nargs > 7) {
        PyErr_Format(PyExc_TypeError,
                     "syscall takes a number and at most 6 arguments (%zd given)",
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (to_register(args[i], &regs[i]) < 0)
            return -1;
    }
    long ret;
    /* Let other Python threads run while we are in the kernel: a blocking
     * syscall (a futex wait, a read) must not stall the interpreter. */
    Py_BEGIN_ALLOW_THREADS
    ret = rsys_syscall(regs[1], regs[2], regs[3], regs[4], regs[5], regs[6],
                       regs[0]);
    Py_END_ALLOW_THREADS
    if (ret < 0 && ret > -4096) {
        raise_errno(-ret);
        return -1;
    }
    *result = ret;
    return 0;
}

static PyObject *raw_syscall(PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs)
{
    long result;
    if (do_syscall(args, nargs, &result) < 0)
        return NULL;
    return PyLong_FromLong(result);
}

/* ---- Ready: an awaitable whose result is already known ---- */

typedef struct {
    PyObject_HEAD
    PyObject *result;
} ReadyObject;

static PyTypeObject ReadyType;

static void ready_dealloc(ReadyObject *self)
{
    Py_XDECREF(self->result);
    PyObject_Free(self);
}

static PyObject *ready_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

static PySendResult ready_am_send(PyObject *self, PyObject *arg,
                                  PyObject **presult)
{
    ReadyObject *ready = (ReadyObject *)self;
    PyObject *result = ready->result ? ready->result : Py_None;
    Py_INCREF(result);
    *presult = result;
    return PYGEN_RETURN;
}

static PyObject *ready_iternext(PyObject *self)
{
    ReadyObject *ready = (ReadyObject *)self;
    PyObject *result = ready->result ? ready->result : Py_None;
    /* StopIteration(value); a tuple would be unpacked, so wrap it. */
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, result);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *ready_send(PyObject *self, PyObject *arg)
{
    return ready_iternext(self);
}

static PyObject *ready_throw(PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "throw expects an exception");
        return NULL;
    }
    PyObject *exc = args[0];
    if (PyExceptionClass_Check(exc))
        PyErr_SetNone(exc);
    else
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    return NULL;
}

static PyObject *ready_close(PyObject *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyMethodDef ready_methods[] = {
    {"send", (PyCFunction)ready_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))ready_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods ready_async = {
    .am_await = ready_await,
    .am_send = ready_am_send,
};

static PyTypeObject ReadyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rsyscall._native._raw.Ready",
    .tp_basicsize = sizeof(ReadyObject),
    .tp_dealloc = (destructor)ready_dealloc,
    .tp_as_async = &ready_async,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An awaitable that is already complete.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = ready_iternext,
    .tp_methods = ready_methods,
};

static PyObject *make_ready(PyObject *result)
{
    ReadyObject *ready = PyObject_New(ReadyObject, &ReadyType);
    if (ready == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    ready->result = result; /* steals the reference */
    return (PyObject *)ready;
}

static PyObject *raw_ready_syscall(PyObject *self, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    long result;
    if (do_syscall(args, nargs, &result) < 0)
        return NULL;
    PyObject *value = PyLong_FromLong(result);
    if (value == NULL)
        return NULL;
    return make_ready(value);
}

/* ---- memory in our own address space ---- */

static int to_address(PyObject *obj, char **out)
{
    unsigned long value = PyLong_AsUnsignedLong(obj);
    if (value == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (value == 0) {
        PyErr_SetString(PyExc_ValueError, "null address");
        return -1;
    }
    *out = (char *)value;
    return 0;
}

static PyObject *raw_read_memory(PyObject *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    char *addr;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read_memory(address, size)");
        return NULL;
    }
    if (to_address(args[0], &addr) < 0)
        return NULL;
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    return PyBytes_FromStringAndSize(addr, size);
}

static PyObject *raw_write_memory(PyObject *self, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    char *addr;
    Py_buffer view;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "write_memory(address, data)");
        return NULL;
    }
    if (to_address(args[0], &addr) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    memcpy(addr, view.buf, view.len);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* ---- the state of a server in our address space (a CLONE_VM child) ---- */

static int to_state(PyObject *obj, struct rsys_server_state **out)
{
    char *addr;
    if (to_address(obj, &addr) < 0)
        return -1;
    *out = (struct rsys_server_state *)addr;
    return 0;
}

static PyObject *raw_request_skip(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct rsys_server_state *state;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "request_skip(state_address, seq)");
        return NULL;
    }
    if (to_state(args[0], &state) < 0)
        return NULL;
    unsigned long long seq = PyLong_AsUnsignedLongLong(args[1]);
    if (seq == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(rsys_request_skip(state, seq));
}

static PyObject *raw_server_current(PyObject *self, PyObject *arg)
{
    struct rsys_server_state *state;
    if (to_state(arg, &state) < 0)
        return NULL;
    uint64_t current = state->current;
    return PyLong_FromUnsignedLongLong(current);
}

static PyMethodDef raw_methods[] = {
    {"syscall", (PyCFunction)(void (*)(void))raw_syscall, METH_FASTCALL,
     "syscall(number, *args) -> int\n\n"
     "Make a system call in this process.  Raises OSError on failure."},
    {"ready_syscall", (PyCFunction)(void (*)(void))raw_ready_syscall,
     METH_FASTCALL,
     "ready_syscall(number, *args) -> Awaitable[int]\n\n"
     "Make a system call in this process now; return an awaitable that\n"
     "gives its result.  Raises OSError on failure, before any await."},
    {"read_memory", (PyCFunction)(void (*)(void))raw_read_memory,
     METH_FASTCALL, "read_memory(address, size) -> bytes"},
    {"write_memory", (PyCFunction)(void (*)(void))raw_write_memory,
     METH_FASTCALL, "write_memory(address, data) -> None"},
    {"request_skip", (PyCFunction)(void (*)(void))raw_request_skip, METH_FASTCALL,
     "request_skip(state_address, seq) -> bool\n\n"
     "Ask the server whose state is at state_address to skip request seq;\n"
     "True if it certainly will (it had not started it)."},
    {"server_current", (PyCFunction)raw_server_current, METH_O,
     "server_current(state_address) -> int: the request it runs or last ran."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef raw_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rsyscall._native._raw",
    .m_doc = "Raw system calls, the syscall server and the clone trampoline.",
    .m_size = -1,
    .m_methods = raw_methods,
};

PyMODINIT_FUNC PyInit__raw(void)
{
    if (PyType_Ready(&ReadyType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&raw_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Ready", (PyObject *)&ReadyType) < 0 ||
        PyModule_AddIntConstant(module, "SERVER_FUNCTION",
                                (long)&rsys_server) < 0 ||
        PyModule_AddIntConstant(module, "CHILD_MAIN_FUNCTION",
                                (long)&rsys_child_main) < 0 ||
        PyModule_AddIntConstant(module, "FUTEX_WAITER_FUNCTION",
                                (long)&rsys_futex_waiter) < 0 ||
        PyModule_AddIntConstant(module, "SERVER_STATE_SIZE",
                                sizeof(struct rsys_server_state)) < 0 ||
        PyModule_AddIntConstant(module, "INTERRUPT_SIGNAL", RSYS_INTERRUPT_SIGNAL) < 0 ||
        PyModule_AddIntConstant(module, "STACK_WORDS", RSYS_STACK_WORDS) < 0 ||
        PyModule_AddIntConstant(module, "REQUEST_SIZE",
                                sizeof(struct rsys_request)) < 0 ||
        PyModule_AddIntConstant(module, "RESPONSE_SIZE",
                                sizeof(rsys_response)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
