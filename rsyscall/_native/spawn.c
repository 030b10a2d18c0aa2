/* rsyscall._native._raw.spawn: clone, set up and exec a program from our
 * own process in one call, the way posix_spawn does.
 *
 * `Thread.run` on the local thread spends most of a child thread's cost on
 * things a program about to exec does not need: a connection, a syscall
 * server, requests and answers for each step.  Here the child is cloned
 * with CLONE_VM | CLONE_VFORK: it runs on a small stack of its own in our
 * memory while we are suspended, does the few steps of the setup itself,
 * and execs; the kernel resumes us exactly when it has exec'd or exited, so
 * exec is detected without any watcher.  A failed exec leaves its errno in
 * memory we share, and the child is reaped here before returning.
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
#include <sys/wait.h>
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
#ifndef P_PIDFD
#define P_PIDFD 3
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

/* Runs in the child, on its own stack, in our memory, while we wait. */
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

/* A NULL-terminated array of the bytes objects' buffers (kept alive by the
 * caller's arguments), or NULL with an exception set. */
static char **string_array(PyObject *sequence, const char *what)
{
    PyObject *fast = PySequence_Fast(sequence, what);
    if (fast == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    char **array = PyMem_Malloc((count + 1) * sizeof(char *));
    if (array == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
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
    /* The items stay alive in `sequence`, which the caller holds. */
    Py_DECREF(fast);
    return array;
error:
    PyMem_Free(array);
    Py_DECREF(fast);
    return NULL;
}

/* spawn(path, argv, envp, sources, cwd, parent_pid) -> (pid, pidfd, errno, syscall) */
PyObject *rsys_raw_spawn(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "spawn(path, argv, envp, sources, cwd, parent_pid)");
        return NULL;
    }
    struct spawn_plan plan = {0};
    if (!PyBytes_Check(args[0]) || (args[4] != Py_None && !PyBytes_Check(args[4]))) {
        PyErr_SetString(PyExc_TypeError, "path and cwd must be bytes");
        return NULL;
    }
    plan.path = PyBytes_AS_STRING(args[0]);
    plan.cwd = args[4] == Py_None ? NULL : PyBytes_AS_STRING(args[4]);
    if (!PyArg_ParseTuple(args[3], "iii", &plan.sources[0], &plan.sources[1],
                          &plan.sources[2]))
        return NULL;
    plan.parent_pid = PyLong_AsLong(args[5]);
    if (plan.parent_pid == -1 && PyErr_Occurred())
        return NULL;
    plan.argv = string_array(args[1], "argv");
    if (plan.argv == NULL)
        return NULL;
    plan.envp = string_array(args[2], "envp");
    if (plan.envp == NULL) {
        PyMem_Free(plan.argv);
        return NULL;
    }
    char *stack = PyMem_Malloc(SPAWN_STACK_SIZE);
    if (stack == NULL) {
        PyMem_Free(plan.argv);
        PyMem_Free(plan.envp);
        PyErr_NoMemory();
        return NULL;
    }
    /* The trampoline pops the function and six arguments, then calls with
     * a 16-byte aligned stack (as the child threads' stacks are laid out). */
    uintptr_t top = ((uintptr_t)stack + SPAWN_STACK_SIZE) & ~(uintptr_t)15;
    long *words = (long *)(top - 16 - RSYS_STACK_WORDS * sizeof(long));
    memset(words, 0, RSYS_STACK_WORDS * sizeof(long));
    words[0] = (long)&spawn_child;
    words[1] = (long)&plan;
    int pidfd = -1;
    struct clone_args clone_args = {
        .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
        .stack = (uint64_t)(uintptr_t)stack,
        .stack_size = (uint64_t)((uintptr_t)words - (uintptr_t)stack),
    };
    uint64_t all = ~(uint64_t)0;
    rsys_syscall(SIG_SETMASK, (long)&all, (long)&plan.old_mask, 8, 0, 0, __NR_rt_sigprocmask);
    /* Holding the GIL: nothing else of ours runs until the child has
     * exec'd or exited (CLONE_VFORK), which takes well under a millisecond. */
    long pid = rsys_syscall((long)&clone_args, sizeof(clone_args), 0, 0, 0, 0, __NR_clone3);
    rsys_syscall(SIG_SETMASK, (long)&plan.old_mask, 0, 8, 0, 0, __NR_rt_sigprocmask);
    PyMem_Free(stack);
    PyMem_Free(plan.argv);
    PyMem_Free(plan.envp);
    if (pid < 0) {
        errno = (int)-pid;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int error = plan.error;
    if (error != 0) {
        /* It has exited (with 127): reap it here, so nothing is left. */
        siginfo_t info;
        rsys_syscall(P_PIDFD, pidfd, (long)&info, WEXITED, 0, 0, __NR_waitid);
        rsys_syscall(pidfd, 0, 0, 0, 0, 0, __NR_close);
        return Py_BuildValue("(iiii)", 0, -1, error, plan.failed);
    }
    return Py_BuildValue("(liii)", pid, pidfd, 0, 0);
}
