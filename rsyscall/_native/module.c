/* rsyscall._native._raw: the Python face of the freestanding core.
 *
 * The local thread's syscalls come through here, so every entry is a
 * METH_FASTCALL function that converts its integer arguments, makes the
 * system call and turns a -errno result into OSError.  `Ready` lets the local
 * syscall interface hand back an awaitable that is already complete, without
 * the cost of a Python coroutine. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <string.h>
#include <ucontext.h>

#include "memory.h"
#include "spawn.h"
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
        if (uvalue == (unsigned long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                return -1;
            /* Bad input is a ValueError, as everywhere in the library. */
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "syscall argument is above 2**64-1");
            return -1;
        }
        value = (long)uvalue;
    } else if (overflow < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "syscall argument is below -2**63");
        return -1;
    }
    *out = value;
    return 0;
}

/* The Python factory that makes the OSError for a failed syscall (it
 * names the syscall): rsyscall.near.interface.syscall_error, registered at
 * import by set_error_factory.  Called only on the error path. */
static PyObject *error_factory = NULL;

static PyObject *raise_errno(long err, long number)
{
    if (error_factory != NULL) {
        PyObject *exc = PyObject_CallFunction(error_factory, "ll", number, err);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    PyObject *args = Py_BuildValue("(is)", (int)err, strerror((int)err));
    if (args != NULL) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *raw_set_error_factory(PyObject *self, PyObject *factory)
{
    if (!PyCallable_Check(factory)) {
        PyErr_SetString(PyExc_TypeError, "the error factory must be callable");
        return NULL;
    }
    Py_INCREF(factory);
    Py_XSETREF(error_factory, factory);
    Py_RETURN_NONE;
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
        raise_errno(-ret, regs[0]);
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

/* exchange(fd, request) -> bytes | int | None: the connection's fast path
 * (rsyscall.tasks.connection).  Write the request to the non-blocking
 * socket fd; if the server has not answered by then, give up the CPU once
 * (a server on our CPU, waiting for this request, runs now) and look
 * again.  Returns what one read got (b"" at EOF), None if nothing came or
 * the read failed (the caller's ordinary wait finds out why), or the
 * number of bytes written if the write was short (0: the socket is full).
 * A failed write raises OSError. */
static PyObject *raw_exchange(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "exchange(fd: int, request: bytes)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    long written = rsys_syscall(fd, (long)PyBytes_AS_STRING(args[1]), size, 0, 0, 0, __NR_write);
    if (written == -EAGAIN)
        written = 0;
    if (written < 0) {
        errno = (int)-written;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (written < size)
        return PyLong_FromLong(written);
    char answer[4096];
    long got = rsys_syscall(fd, (long)answer, sizeof(answer), 0, 0, 0, __NR_read);
    if (got == -EAGAIN) {
        rsys_syscall(0, 0, 0, 0, 0, 0, __NR_sched_yield);
        got = rsys_syscall(fd, (long)answer, sizeof(answer), 0, 0, 0, __NR_read);
    }
    if (got < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(answer, got);
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


/* The same as awaitables that are already complete: the local memory
 * transport's read and write, awaited on every pointer read, then cost no
 * coroutine. */
static PyObject *raw_ready_read_memory(PyObject *self, PyObject *const *args,
                                       Py_ssize_t nargs)
{
    PyObject *data = raw_read_memory(self, args, nargs);
    return data == NULL ? NULL : make_ready(data);
}

static PyObject *raw_ready_write_memory(PyObject *self, PyObject *const *args,
                                        Py_ssize_t nargs)
{
    PyObject *none = raw_write_memory(self, args, nargs);
    return none == NULL ? NULL : make_ready(none);
}
/* ---- signal forwarding, for AsyncSignalQueue on the local thread ----
 *
 * A queue blocks its signals only in the OS thread that reads its signalfd
 * (the reader), so the kernel gives a process-directed signal to another
 * thread that does not block it, where the disposition applies (for
 * SIGUSR1, death).  While a queue for a signal is open, the handler below
 * is its disposition: in any thread but the reader it re-queues the signal
 * to the reader with rt_tgsigqueueinfo(2), where it is blocked, so the
 * signalfd reads it.
 *
 * The handler runs in whatever thread the kernel picked, at any moment: it
 * makes raw syscalls only (no errno, no libc state, no Python), writes no
 * memory but its own stack and the interrupted context, and reads only
 * words that Python writes before installing it. */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>

#define FWD_NSIG 65
#define FWD_SA_RESTORER 0x04000000UL /* <asm/signal.h>; glibc hides it */
#define FWD_ESRCH 3

/* The kernel's struct sigaction for rt_sigaction(2) (<asm/signal.h>). */
struct fwd_sigaction {
    unsigned long handler;
    unsigned long flags;
    unsigned long restorer;
    unsigned long mask;
};

/* Per signal: the reader's tid (0: not forwarding), the action from before
 * the handler went in, and whether it is in.  Written by Python (under the
 * GIL) only; the handler only reads them. */
static volatile long fwd_target[FWD_NSIG];
/* An eventfd written after each forward (or -1): the reader's event loop
 * may wait in another OS thread (trio's guest mode does), whose epoll does
 * not see signals pending for the reader alone. */
static volatile int fwd_wake_fd = -1;
static struct fwd_sigaction fwd_saved[FWD_NSIG];
static int fwd_installed[FWD_NSIG];

/* The restorer rt_sigaction needs on x86_64: the handler returns here, and
 * rt_sigreturn(2) puts back the interrupted context (with its signal mask). */
extern void rsys_fwd_restorer(void) __attribute__((visibility("hidden")));
__asm__(
    ".text\n"
    ".type rsys_fwd_restorer, @function\n"
    "rsys_fwd_restorer:\n"
    "    mov $15, %eax\n" /* rt_sigreturn */
    "    syscall\n"
    "    hlt\n"
    ".size rsys_fwd_restorer, .-rsys_fwd_restorer\n");

static long fwd_sys4(long number, long a1, long a2, long a3, long a4)
{
    return rsys_syscall(a1, a2, a3, a4, 0, 0, number);
}

static long fwd_sigaction(int sig, const struct fwd_sigaction *act,
                          struct fwd_sigaction *old)
{
    return fwd_sys4(SYS_rt_sigaction, sig, (long)act, (long)old, 8);
}

/* Signals a fault raises in the thread that faulted. */
static int fwd_is_fault(int sig)
{
    return sig == SIGILL || sig == SIGTRAP || sig == SIGBUS || sig == SIGFPE ||
           sig == SIGSEGV || sig == SIGSYS;
}

static void fwd_wake(void)
{
    int fd = fwd_wake_fd;
    if (fd >= 0) {
        uint64_t one = 1;
        fwd_sys4(SYS_write, fd, (long)&one, sizeof(one), 0);
    }
}

static void fwd_handler(int sig, siginfo_t *info, void *context)
{
    long pid = fwd_sys4(SYS_getpid, 0, 0, 0, 0);
    long self = fwd_sys4(SYS_gettid, 0, 0, 0, 0);
    long target = fwd_target[sig];
    siginfo_t copy = *info;

    if (fwd_is_fault(sig) && info->si_code > 0) {
        /* A fault (si_code > 0: the kernel sent it).  Forwarding cannot fix
         * the faulting instruction; put back the action from before and
         * return, so the instruction faults again and that action applies. */
        fwd_sigaction(sig, &fwd_saved[sig], NULL);
        return;
    }
    if (target == self) {
        /* The reader itself, with the signal unblocked (it was unblocked
         * under the queue, or arrived while the queue was being made).
         * Block it there from the return on, and queue it again to
         * ourselves (any si_code may be sent to oneself): the signalfd
         * reads it. */
        ucontext_t *uc = context;
        uc->uc_sigmask.__val[0] |= 1UL << (sig - 1);
        fwd_sys4(SYS_rt_tgsigqueueinfo, pid, self, sig, (long)info);
        fwd_wake();
        return;
    }
    if (target == 0) {
        /* The last queue closed while this signal was on its way; the
         * action from before is back.  Queue it to ourselves: it is
         * blocked while we run, and that action takes it on return. */
        fwd_sys4(SYS_rt_tgsigqueueinfo, pid, self, sig, (long)info);
        return;
    }
    /* The kernel takes only a negative si_code other than SI_TKILL from
     * another thread (rt_tgsigqueueinfo(2)): kill(2), tgkill(2) and kernel
     * codes become SI_QUEUE, the rest of the siginfo as it was. */
    if (copy.si_code >= 0 || copy.si_code == SI_TKILL)
        copy.si_code = SI_QUEUE;
    long sent = fwd_sys4(SYS_rt_tgsigqueueinfo, pid, target, sig, (long)&copy);
    if (sent == 0)
        fwd_wake();
    if (sent == -FWD_ESRCH) {
        /* No reader thread in this process: it exited, or this is a
         * fork(2)ed child.  The action from before applies. */
        fwd_sigaction(sig, &fwd_saved[sig], NULL);
        fwd_sys4(SYS_rt_tgsigqueueinfo, pid, self, sig, (long)info);
    }
}

static int fwd_signal_arg(PyObject *arg, int *sig)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 1 || value >= FWD_NSIG || value == SIGKILL || value == SIGSTOP) {
        PyErr_Format(PyExc_ValueError,
                     "signal %ld cannot be forwarded (1..64, not SIGKILL or SIGSTOP)",
                     value);
        return -1;
    }
    *sig = (int)value;
    return 0;
}

static PyObject *fwd_oserror(long ret)
{
    errno = (int)-ret;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyObject *raw_forward_signal(PyObject *self, PyObject *arg)
{
    int sig;
    if (fwd_signal_arg(arg, &sig) < 0)
        return NULL;
    long tid = fwd_sys4(SYS_gettid, 0, 0, 0, 0);
    if (fwd_installed[sig]) {
        if (fwd_target[sig] != tid)
            return PyErr_Format(PyExc_RuntimeError,
                                "signal %d is already forwarded to thread %ld",
                                sig, (long)fwd_target[sig]);
        Py_RETURN_NONE;
    }
    struct fwd_sigaction old;
    long ret = fwd_sigaction(sig, NULL, &old);
    if (ret < 0)
        return fwd_oserror(ret);
    fwd_saved[sig] = old;
    struct fwd_sigaction ours = {
        .handler = (unsigned long)&fwd_handler,
        .flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | FWD_SA_RESTORER,
        .restorer = (unsigned long)&rsys_fwd_restorer,
        .mask = 0,
    };
    if (sig == SIGCHLD) {
        /* Keep what the action from before said about children: SIG_IGN
         * or SA_NOCLDWAIT means they are not left as zombies. */
        ours.flags |= old.flags & (SA_NOCLDSTOP | SA_NOCLDWAIT);
        if (old.handler == (unsigned long)SIG_IGN)
            ours.flags |= SA_NOCLDWAIT;
    }
    /* The target first: the handler may run as soon as it is in. */
    fwd_target[sig] = tid;
    ret = fwd_sigaction(sig, &ours, NULL);
    if (ret < 0) {
        fwd_target[sig] = 0;
        return fwd_oserror(ret);
    }
    fwd_installed[sig] = 1;
    Py_RETURN_NONE;
}

static PyObject *raw_unforward_signal(PyObject *self, PyObject *arg)
{
    int sig;
    if (fwd_signal_arg(arg, &sig) < 0)
        return NULL;
    if (!fwd_installed[sig])
        Py_RETURN_FALSE;
    struct fwd_sigaction current;
    long ret = fwd_sigaction(sig, NULL, &current);
    if (ret < 0)
        return fwd_oserror(ret);
    int restored = 0;
    if (current.handler == (unsigned long)&fwd_handler) {
        ret = fwd_sigaction(sig, &fwd_saved[sig], NULL);
        if (ret < 0)
            return fwd_oserror(ret);
        restored = 1;
    }
    /* After the action is back: a handler still running sees 0 and hands
     * the signal to that action. */
    fwd_target[sig] = 0;
    fwd_installed[sig] = 0;
    return PyBool_FromLong(restored);
}

static PyObject *raw_set_forward_wakeup(PyObject *self, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < -1 || fd > 0x7fffffff) {
        PyErr_Format(PyExc_ValueError, "not an fd: %ld", fd);
        return NULL;
    }
    fwd_wake_fd = (int)fd;
    Py_RETURN_NONE;
}

static PyObject *raw_forwarding_thread(PyObject *self, PyObject *arg)
{
    int sig;
    if (fwd_signal_arg(arg, &sig) < 0)
        return NULL;
    return PyLong_FromLong(fwd_installed[sig] ? (long)fwd_target[sig] : 0);
}

/* ---- another process's memory, directly (process_vm_readv(2)) ---- */

#include <sys/uio.h>

static PyObject *raw_process_vm_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "process_vm_read(pid, address, size)");
        return NULL;
    }
    long pid = PyLong_AsLong(args[0]);
    unsigned long address = PyLong_AsUnsignedLong(args[1]);
    Py_ssize_t size = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL)
        return NULL;
    struct iovec local = {PyBytes_AS_STRING(result), (size_t)size};
    struct iovec remote = {(void *)address, (size_t)size};
    long got;
    Py_BEGIN_ALLOW_THREADS
    got = rsys_syscall(pid, (long)&local, 1, (long)&remote, 1, 0, 310 /* process_vm_readv */);
    Py_END_ALLOW_THREADS
    if (got != size) {
        Py_DECREF(result);
        if (got < 0 && got > -4096)
            return raise_errno(-got, 310);
        PyErr_Format(PyExc_OSError, "process_vm_readv: short read (%ld of %zd)", got, size);
        return NULL;
    }
    return result;
}

static PyObject *raw_process_vm_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "process_vm_write(pid, address, data)");
        return NULL;
    }
    long pid = PyLong_AsLong(args[0]);
    unsigned long address = PyLong_AsUnsignedLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    struct iovec local = {view.buf, (size_t)view.len};
    struct iovec remote = {(void *)address, (size_t)view.len};
    long done;
    Py_BEGIN_ALLOW_THREADS
    done = rsys_syscall(pid, (long)&local, 1, (long)&remote, 1, 0, 311 /* process_vm_writev */);
    Py_END_ALLOW_THREADS
    Py_ssize_t len = view.len;
    PyBuffer_Release(&view);
    if (done != len) {
        if (done < 0 && done > -4096)
            return raise_errno(-done, 311);
        PyErr_Format(PyExc_OSError, "process_vm_writev: short write (%ld of %zd)", done, len);
        return NULL;
    }
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
    {"set_error_factory", (PyCFunction)raw_set_error_factory, METH_O,
     "set_error_factory(factory) -> None\n\n"
     "Failed syscalls raise factory(number, errno), an OSError."},
    {"read_memory", (PyCFunction)(void (*)(void))raw_read_memory,
     METH_FASTCALL, "read_memory(address, size) -> bytes"},
    {"write_memory", (PyCFunction)(void (*)(void))raw_write_memory,
     METH_FASTCALL, "write_memory(address, data) -> None"},
    {"ready_read_memory", (PyCFunction)(void (*)(void))raw_ready_read_memory,
     METH_FASTCALL, "ready_read_memory(address, size) -> Awaitable[bytes]"},
    {"ready_write_memory", (PyCFunction)(void (*)(void))raw_ready_write_memory,
     METH_FASTCALL, "ready_write_memory(address, data) -> Awaitable[None]"},
    {"exchange", (PyCFunction)(void (*)(void))raw_exchange, METH_FASTCALL,
     "exchange(fd, request) -> bytes | int | None\n\n"
     "Write request to the non-blocking socket fd and read the answer if it\n"
     "comes by the time we have given up the CPU once: what one read got\n"
     "(b'' at EOF), None if nothing came (or the read failed), or the bytes\n"
     "written if the write was short.  A failed write raises OSError."},
    {"spawn", (PyCFunction)(void (*)(void))rsys_raw_spawn, METH_FASTCALL,
     "spawn(path, argv, envp, sources, cwd, parent_pid) -> Spawned\n\n"
     "Clone (CLONE_VM | CLONE_PIDFD) a child of this process that sets\n"
     "itself up and execs path, and return at once.  sources: for fds 0, 1\n"
     "and 2, the fd to dup there, -1 to leave it, -2 (fd 2 only) for\n"
     "whatever fd 1 became.  The child chdirs to cwd if not None, keeps no\n"
     "fd above 2, has every caught signal and SIGPIPE and SIGXFSZ at their\n"
     "defaults, and dies with SIGKILL if the calling thread does (its\n"
     "parent must have the pid parent_pid as the child sees it).  It runs\n"
     "on memory the Spawned holds: reap the child, then release() it and\n"
     "ask failure() whether a step or the exec failed."},
    /* signal forwarding (AsyncSignalQueue on the local thread) */
    {"forward_signal", (PyCFunction)raw_forward_signal, METH_O,
     "forward_signal(signo) -> None\n\n"
     "Make the calling OS thread the reader of signo: install a handler\n"
     "that re-queues signo to it from any other thread\n"
     "(rt_tgsigqueueinfo(2)), saving the action from before."},
    {"unforward_signal", (PyCFunction)raw_unforward_signal, METH_O,
     "unforward_signal(signo) -> bool\n\n"
     "Stop forwarding signo: put back the action from before, unless the\n"
     "handler was replaced meanwhile; True if it was put back."},
    {"forwarding_thread", (PyCFunction)raw_forwarding_thread, METH_O,
     "forwarding_thread(signo) -> int\n\n"
     "The tid signo is forwarded to, or 0."},
    {"set_forward_wakeup", (PyCFunction)raw_set_forward_wakeup, METH_O,
     "set_forward_wakeup(fd) -> None: an eventfd written after each forward (-1: none)."},
    {"process_vm_read", (PyCFunction)(void (*)(void))raw_process_vm_read, METH_FASTCALL,
     "process_vm_read(pid, address, size) -> bytes (all of it, or OSError)"},
    {"process_vm_write", (PyCFunction)(void (*)(void))raw_process_vm_write, METH_FASTCALL,
     "process_vm_write(pid, address, data) -> None (all of it, or OSError)"},
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
    if (rsys_add_memory_types(module) < 0 || rsys_add_spawn_types(module) < 0 ||
        PyModule_AddObjectRef(module, "Ready", (PyObject *)&ReadyType) < 0 ||
        PyModule_AddIntConstant(module, "SERVER_FUNCTION",
                                (long)&rsys_server) < 0 ||
        PyModule_AddIntConstant(module, "CHILD_MAIN_FUNCTION",
                                (long)&rsys_child_main) < 0 ||
        PyModule_AddIntConstant(module, "FUTEX_WAITER_FUNCTION",
                                (long)&rsys_futex_waiter) < 0 ||
        PyModule_AddIntConstant(module, "SERVER_STATE_SIZE",
                                sizeof(struct rsys_server_state)) < 0 ||
        PyModule_AddIntConstant(module, "SERVER_STATE_LISTENER_OFFSET",
                                offsetof(struct rsys_server_state, listener)) < 0 ||
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
