/* The freestanding core: raw syscall entry with the clone trampoline, the
 * syscall-server loop, and the futex waiter.  See rsys.h.
 *
 * Nothing here may touch libc or Python: a child cloned with CLONE_VM runs
 * this code on a small stack of its own while sharing our memory, our TLS
 * pointer and, unless the user says otherwise, nothing else. */
#include "rsys.h"

#define RSYS_NR_read 0
#define RSYS_NR_write 1
#define RSYS_NR_futex 202
#define RSYS_NR_prctl 157
#define RSYS_PR_SET_PDEATHSIG 1
#define RSYS_SIGKILL 9
#define RSYS_NR_fcntl 72
#define RSYS_F_GETFL 3
#define RSYS_F_SETFL 4
#define RSYS_O_NONBLOCK 04000
#define RSYS_NR_clone3 435
#define RSYS_NR_getppid 110
#define RSYS_CLONE_VM 0x100
#define RSYS_CLONE_FILES 0x400
#define RSYS_CLONE_PARENT 0x8000
#define RSYS_CLONE_CLEAR_SIGHAND 0x100000000ULL
#define RSYS_EINTR 4
#define RSYS_FUTEX_WAIT 0

/* rsys_syscall(a1, a2, a3, a4, a5, a6, number): the System V ABI puts the
 * first six arguments in rdi, rsi, rdx, rcx, r8, r9 and `number` on the stack;
 * the kernel wants the fourth argument in r10 and the number in rax.  rbx is
 * callee-saved, so it keeps the syscall number across the syscall instruction
 * where both parent and child can see it. */
__asm__(
    ".text\n"
    ".globl rsys_syscall\n"
    ".type rsys_syscall, @function\n"
    "rsys_syscall:\n"
    "    push %rbx\n"
    "    mov 16(%rsp), %rax\n"
    "    mov %rax, %rbx\n"
    "    mov %rcx, %r10\n"
    "    syscall\n"
    "    test %rax, %rax\n"
    "    jnz 1f\n"
    "    cmp $56, %rbx\n"       /* clone */
    "    je rsys_child_trampoline\n"
    "    cmp $435, %rbx\n"      /* clone3 */
    "    je rsys_child_trampoline\n"
    "1:  pop %rbx\n"
    "    ret\n"
    ".size rsys_syscall, .-rsys_syscall\n"
    "\n"
    /* The new child: its stack holds the function and its six arguments. */
    ".type rsys_child_trampoline, @function\n"
    "rsys_child_trampoline:\n"
    "    pop %rax\n"
    "    pop %rdi\n"
    "    pop %rsi\n"
    "    pop %rdx\n"
    "    pop %rcx\n"
    "    pop %r8\n"
    "    pop %r9\n"
    "    call *%rax\n"
    "    mov %rax, %rdi\n"
    "    mov $60, %eax\n"       /* exit: this thread only */
    "    syscall\n"
    "    hlt\n"
    ".size rsys_child_trampoline, .-rsys_child_trampoline\n"
);

static long raw_read(long fd, void *buf, long count)
{
    return rsys_syscall(fd, (long)buf, count, 0, 0, 0, RSYS_NR_read);
}

static long raw_write(long fd, const void *buf, long count)
{
    return rsys_syscall(fd, (long)buf, count, 0, 0, 0, RSYS_NR_write);
}

/* Read exactly `count` bytes.  Returns 0 on success, 1 on EOF or error.
 * Reading one request at a time (never more) matters: a request still unread
 * in the socket keeps it readable, so an epoll_wait this server is running
 * wakes up for the next request instead of sleeping on a buffered one. */
static int read_exact(long fd, char *buf, long count)
{
    while (count > 0) {
        long ret = raw_read(fd, buf, count);
        if (ret == -RSYS_EINTR)
            continue;
        if (ret <= 0)
            return 1;
        buf += ret;
        count -= ret;
    }
    return 0;
}

static int write_all(long fd, const char *buf, long count)
{
    while (count > 0) {
        long ret = raw_write(fd, buf, count);
        if (ret == -RSYS_EINTR)
            continue;
        if (ret <= 0)
            return 1;
        buf += ret;
        count -= ret;
    }
    return 0;
}

long rsys_server(long infd, long outfd)
{
    struct rsys_request request;
    for (;;) {
        if (read_exact(infd, (char *)&request, sizeof(request)))
            return 0;
        /* Answer each request before reading the next: a later request may
         * block (epoll_wait), and the caller may be waiting on this answer
         * to decide what wakes it. */
        rsys_response response = rsys_syscall(
            request.args[0], request.args[1], request.args[2],
            request.args[3], request.args[4], request.args[5],
            request.number);
        if (write_all(outfd, (const char *)&response, sizeof(response)))
            return 1;
    }
}

/* struct clone_args, as <linux/sched.h> has it (no libc headers here). */
struct rsys_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

long rsys_child_main(long infd, long outfd, long watcher_stack, long watcher_stack_size,
                     long watcher_pid, long parent_pid)
{
    if (rsys_syscall(RSYS_PR_SET_PDEATHSIG, RSYS_SIGKILL, 0, 0, 0, 0, RSYS_NR_prctl) < 0)
        return 1;
    /* If the parent died before the line above, no signal will come: we
     * would already have been reparented. */
    if (rsys_syscall(0, 0, 0, 0, 0, 0, RSYS_NR_getppid) != parent_pid)
        return 1;
    /* The parent makes the socket pair non-blocking for its own end; this
     * end is a separate open file, and the server wants blocking reads. */
    long flags = rsys_syscall(infd, RSYS_F_GETFL, 0, 0, 0, 0, RSYS_NR_fcntl);
    if (flags < 0 || rsys_syscall(infd, RSYS_F_SETFL, flags & ~RSYS_O_NONBLOCK, 0, 0, 0,
                                  RSYS_NR_fcntl) < 0)
        return 1;
    if (watcher_stack) {
        /* The exec watcher: a sibling (CLONE_PARENT, so our parent reaps
         * it, not whatever program we exec) sharing our memory and fd
         * table.  Started here, before we serve, it costs the parent
         * nothing and is asleep on the futex before any exec can happen. */
        struct rsys_clone_args args = {
            .flags = RSYS_CLONE_VM | RSYS_CLONE_FILES | RSYS_CLONE_PARENT
                     | RSYS_CLONE_CLEAR_SIGHAND,
            /* clone3 refuses an exit_signal with CLONE_PARENT: a sibling
             * gets ours (SIGCHLD), as the parent expects of its children. */
            .exit_signal = 0,
            .stack = (uint64_t)watcher_stack,
            .stack_size = (uint64_t)watcher_stack_size,
        };
        long pid = rsys_syscall((long)&args, sizeof(args), 0, 0, 0, 0, RSYS_NR_clone3);
        *(volatile int32_t *)watcher_pid = (int32_t)pid;
    }
    return rsys_server(infd, outfd);
}

long rsys_exec_watcher(long futex_addr, long outfd)
{
    rsys_futex_waiter(futex_addr);
    /* We share the fd table the child had before it exec'd (exec gave it
     * a copy), so the connection is still open here: say what happened. */
    rsys_response marker = RSYS_EXEC_MARKER;
    write_all(outfd, (const char *)&marker, sizeof(marker));
    return 0;
}

long rsys_futex_waiter(long addr)
{
    volatile int32_t *word = (volatile int32_t *)addr;
    for (;;) {
        int32_t value = *word;
        if (value == 0)
            return 0;
        /* Returns at once with EAGAIN if the word already changed. */
        rsys_syscall(addr, RSYS_FUTEX_WAIT, value, 0, 0, 0, RSYS_NR_futex);
    }
}
