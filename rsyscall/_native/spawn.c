/* rsyscall._native._raw.spawn: clone, set up and exec a program from our
 * own process in one call, the way posix_spawn does.
 *
 * `Thread.run` on the local thread spends most of a child thread's cost on
 * things a program about to exec does not need: a connection, a syscall
 * server, requests and answers for each step.  Here the child is cloned
 * with CLONE_VM (as child threads are, without CLONE_VFORK): it runs on a
 * small stack of its own in our memory, does the few steps of the setup
 * itself with raw syscalls (no libc: it shares our thread's TLS, errno
 * included), and execs, while we go on at once.  A step or exec that fails
 * leaves its errno in the plan, in memory we share, before the child exits;
 * so once the child has exited, the plan says exactly whether it exec'd.
 * The plan, the stack and the strings the child reads belong to the
 * Spawned object and are freed only after the child is reaped.
 *
 * The child must not run any of our signal handlers (they would run Python's
 * C-level handlers on our memory), so every signal is blocked across the
 * clone; the child resets each caught signal to its default, and SIGPIPE and
 * SIGXFSZ (ignored by Python) too, before restoring the mask for exec. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>

#include "rsys.h"
#include "spawn.h"

#define SPAWN_STACK_SIZE (64 * 1024)
#define SOURCE_KEEP (-1)
#define SOURCE_STDOUT (-2)

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_SET_PDEATHSIG
#define PR_SET_PDEATHSIG 1
#endif

struct kernel_sigaction {
    unsigned long handler;
    unsigned long flags;
    unsigned long restorer;
    uint64_t mask;
};

struct spawn_plan {
    const char *path;
    char **argv;
    char **envp;
    const char *cwd;
    int sources[3];
    long parent_pid;
    uint64_t old_mask;
    volatile int error; /* set by the child when a step or exec fails */
    volatile int failed; /* the syscall that failed */
};

#define SYS(n, ...) rsys_syscall_n(n, __VA_ARGS__)

static inline long rsys_syscall_n(long number, long a1, long a2, long a3, long a4, long a5,
                                  long a6)
{
    return rsys_syscall(a1, a2, a3, a4, a5, a6, number);
}

static long fail(struct spawn_plan *plan, long ret, int number)
{
    plan->error = (int)-ret;
    plan->failed = number;
    return 127;
}

/* Runs in the child, on its own stack, in our memory, alongside us. */
static long spawn_child(long arg, long unused2, long unused3, long unused4, long unused5,
                        long unused6)
{
    struct spawn_plan *plan = (struct spawn_plan *)arg;
    long ret;
    /* Die with the thread that spawned us, and not at all if it is gone. */
    SYS(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
    if (SYS(__NR_getppid, 0, 0, 0, 0, 0, 0) != plan->parent_pid)
        return 1;
    struct kernel_sigaction action, default_action = {0};
    for (long sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (SYS(__NR_rt_sigaction, sig, 0, (long)&action, 8, 0, 0) < 0)
            continue;
        int ignored = action.handler == (unsigned long)SIG_IGN;
        int restore = sig == SIGPIPE || sig == SIGXFSZ;
        if (action.handler != (unsigned long)SIG_DFL && (!ignored || restore))
            SYS(__NR_rt_sigaction, sig, (long)&default_action, 0, 8, 0, 0);
    }
    /* The redirections: copy each source above 2 first, so a source that
     * is also a target (stdout=stdin's fd...) is not overwritten early. */
    int copies[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++) {
        if (plan->sources[i] >= 0) {
            ret = SYS(__NR_fcntl, plan->sources[i], F_DUPFD_CLOEXEC, 3, 0, 0, 0);
            if (ret < 0)
                return fail(plan, ret, __NR_fcntl);
            copies[i] = (int)ret;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (copies[i] >= 0)
            ret = SYS(__NR_dup2, copies[i], i, 0, 0, 0, 0);
        else if (plan->sources[i] == SOURCE_STDOUT)
            ret = SYS(__NR_dup2, 1, i, 0, 0, 0, 0);
        else
            ret = 0;
        if (ret < 0)
            return fail(plan, ret, __NR_dup2);
    }
    if (plan->cwd != NULL) {
        ret = SYS(__NR_chdir, (long)plan->cwd, 0, 0, 0, 0, 0);
        if (ret < 0)
            return fail(plan, ret, __NR_chdir);
    }
    /* The program gets fds 0, 1 and 2 and nothing else of ours. */
    ret = SYS(__NR_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC, 0, 0, 0);
    if (ret < 0)
        return fail(plan, ret, __NR_close_range);
    SYS(__NR_rt_sigprocmask, SIG_SETMASK, (long)&plan->old_mask, 0, 8, 0, 0);
    ret = SYS(__NR_execve, (long)plan->path, (long)plan->argv, (long)plan->envp, 0, 0, 0);
    /* Block everything again: we may not run a handler on this stack. */
    uint64_t all = ~(uint64_t)0;
    SYS(__NR_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0, 0);
    return fail(plan, ret, __NR_execve);
}

/* A NULL-terminated array of the buffers of the bytes in `tuple` (which
 * the caller keeps alive), or NULL with an exception set. */
static char **string_array(PyObject *tuple, const char *what)
{
    Py_ssize_t count = PyTuple_GET_SIZE(tuple);
    char **array = PyMem_Malloc((count + 1) * sizeof(char *));
    if (array == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s must hold bytes", what);
            goto error;
        }
        if ((Py_ssize_t)strlen(PyBytes_AS_STRING(item)) != PyBytes_GET_SIZE(item)) {
            PyErr_Format(PyExc_ValueError, "embedded null byte in %R", item);
            goto error;
        }
        array[i] = PyBytes_AS_STRING(item);
    }
    array[count] = NULL;
    return array;
error:
    PyMem_Free(array);
    return NULL;
}

/* A spawned child and what it reads until it execs or exits. */
typedef struct {
    PyObject_HEAD
    /* Apart from the object: if the object goes before the child is reaped,
     * the plan is left to the child with the stack. */
    struct spawn_plan *plan;
    char *stack;
    PyObject *strings; /* (path, argv tuple, envp tuple, cwd): what plan points into */
    long pid;
    int pidfd;
    int released;
    int error, failed; /* the plan's, kept once it is freed */
} SpawnedObject;

static PyTypeObject SpawnedType;

static void spawned_free_memory(SpawnedObject *self)
{
    if (self->plan != NULL) {
        PyMem_Free(self->plan->argv);
        PyMem_Free(self->plan->envp);
        self->error = self->plan->error;
        self->failed = self->plan->failed;
    }
    PyMem_Free(self->plan);
    PyMem_Free(self->stack);
    self->plan = NULL;
    self->stack = NULL;
    Py_CLEAR(self->strings);
}

static void spawned_dealloc(SpawnedObject *self)
{
    /* Not released: the child may still be running on this memory, so it
     * is left to it (a leak, never a use after free). */
    if (self->released || self->pid <= 0)
        spawned_free_memory(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *spawned_release(SpawnedObject *self, PyObject *unused)
{
    if (!self->released) {
        self->released = 1;
        spawned_free_memory(self);
    }
    Py_RETURN_NONE;
}

static PyObject *spawned_failure(SpawnedObject *self, PyObject *unused)
{
    if (!self->released) {
        PyErr_SetString(PyExc_RuntimeError,
                        "failure() is known only once the child is reaped and released");
        return NULL;
    }
    if (self->error == 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(ii)", self->error, self->failed);
}

static PyObject *spawned_pid(SpawnedObject *self, void *unused)
{
    return PyLong_FromLong(self->pid);
}

static PyObject *spawned_pidfd(SpawnedObject *self, void *unused)
{
    return PyLong_FromLong(self->pidfd);
}

static PyMethodDef spawned_methods[] = {
    {"release", (PyCFunction)spawned_release, METH_NOARGS,
     "release() -> None: free what the child read.  Call only once the child "
     "is reaped (or certainly gone)."},
    {"failure", (PyCFunction)spawned_failure, METH_NOARGS,
     "failure() -> (errno, syscall) | None: after release(), the step or exec "
     "that failed, or None if the child exec'd."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef spawned_getset[] = {
    {"pid", (getter)spawned_pid, NULL, "the child's pid", NULL},
    {"pidfd", (getter)spawned_pidfd, NULL, "a pidfd (close-on-exec) for the child; ours to close",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SpawnedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rsyscall._native._raw.Spawned",
    .tp_basicsize = sizeof(SpawnedObject),
    .tp_dealloc = (destructor)spawned_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A child spawn() started: its pid and pidfd, and whether it exec'd.",
    .tp_methods = spawned_methods,
    .tp_getset = spawned_getset,
};

int rsys_add_spawn_types(PyObject *module)
{
    if (PyType_Ready(&SpawnedType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Spawned", (PyObject *)&SpawnedType);
}

/* spawn(path, argv, envp, sources, cwd, parent_pid) -> Spawned */
PyObject *rsys_raw_spawn(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "spawn(path, argv, envp, sources, cwd, parent_pid)");
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || (args[4] != Py_None && !PyBytes_Check(args[4]))) {
        PyErr_SetString(PyExc_TypeError, "path and cwd must be bytes");
        return NULL;
    }
    int sources[3];
    if (!PyArg_ParseTuple(args[3], "iii", &sources[0], &sources[1], &sources[2]))
        return NULL;
    long parent_pid = PyLong_AsLong(args[5]);
    if (parent_pid == -1 && PyErr_Occurred())
        return NULL;
    SpawnedObject *spawned = PyObject_New(SpawnedObject, &SpawnedType);
    if (spawned == NULL)
        return NULL;
    spawned->plan = NULL;
    spawned->stack = NULL;
    spawned->strings = NULL;
    spawned->pid = 0;
    spawned->pidfd = -1;
    spawned->released = 0;
    spawned->error = spawned->failed = 0;
    struct spawn_plan *plan = PyMem_Calloc(1, sizeof(struct spawn_plan));
    if (plan == NULL) {
        Py_DECREF(spawned);
        return PyErr_NoMemory();
    }
    spawned->plan = plan;
    /* Tuples: the caller cannot change what the child reads. */
    PyObject *argv = PySequence_Tuple(args[1]);
    PyObject *envp = argv == NULL ? NULL : PySequence_Tuple(args[2]);
    if (envp == NULL) {
        Py_XDECREF(argv);
        goto error;
    }
    spawned->strings = PyTuple_Pack(4, args[0], argv, envp, args[4]);
    Py_DECREF(argv);
    Py_DECREF(envp);
    if (spawned->strings == NULL)
        goto error;
    plan->path = PyBytes_AS_STRING(args[0]);
    plan->cwd = args[4] == Py_None ? NULL : PyBytes_AS_STRING(args[4]);
    memcpy(plan->sources, sources, sizeof(sources));
    plan->parent_pid = parent_pid;
    plan->argv = string_array(PyTuple_GET_ITEM(spawned->strings, 1), "argv");
    if (plan->argv == NULL)
        goto error;
    plan->envp = string_array(PyTuple_GET_ITEM(spawned->strings, 2), "envp");
    if (plan->envp == NULL)
        goto error;
    spawned->stack = PyMem_Malloc(SPAWN_STACK_SIZE);
    if (spawned->stack == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    char *stack = spawned->stack;
    /* The trampoline pops the function and six arguments, then calls with
     * a 16-byte aligned stack (as the child threads' stacks are laid out). */
    uintptr_t top = ((uintptr_t)stack + SPAWN_STACK_SIZE) & ~(uintptr_t)15;
    long *words = (long *)(top - 16 - RSYS_STACK_WORDS * sizeof(long));
    memset(words, 0, RSYS_STACK_WORDS * sizeof(long));
    words[0] = (long)&spawn_child;
    words[1] = (long)plan;
    int pidfd = -1;
    struct clone_args clone_args = {
        .flags = CLONE_VM | CLONE_PIDFD,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
        .stack = (uint64_t)(uintptr_t)stack,
        .stack_size = (uint64_t)((uintptr_t)words - (uintptr_t)stack),
    };
    uint64_t all = ~(uint64_t)0;
    rsys_syscall(SIG_SETMASK, (long)&all, (long)&plan->old_mask, 8, 0, 0, __NR_rt_sigprocmask);
    long pid = rsys_syscall((long)&clone_args, sizeof(clone_args), 0, 0, 0, 0, __NR_clone3);
    rsys_syscall(SIG_SETMASK, (long)&plan->old_mask, 0, 8, 0, 0, __NR_rt_sigprocmask);
    if (pid < 0) {
        errno = (int)-pid;
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    spawned->pid = pid;
    spawned->pidfd = pidfd;
    return (PyObject *)spawned;
error:
    /* No child: nothing runs on this memory. */
    Py_DECREF(spawned);
    return NULL;
}
