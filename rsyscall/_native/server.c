/* The freestanding core: raw syscall entry with the clone trampoline, the
 * syscall-server loop, the interrupt handler.  See rsys.h.
 *
 * Nothing here may touch libc or Python: a child cloned with CLONE_VM runs
 * this code on a small stack of its own while sharing our memory, our TLS
 * pointer and, unless the user says otherwise, nothing else. */
#include "rsys.h"

#define RSYS_NR_read 0
#define RSYS_NR_write 1
#define RSYS_NR_rt_sigaction 13
#define RSYS_NR_rt_sigprocmask 14
#define RSYS_NR_prctl 157
#define RSYS_PR_SET_PDEATHSIG 1
#define RSYS_SIGKILL 9
#define RSYS_NR_fcntl 72
#define RSYS_F_GETFL 3
#define RSYS_F_SETFL 4
#define RSYS_O_NONBLOCK 04000
#define RSYS_NR_getppid 110
#define RSYS_SIG_UNBLOCK 1
#define RSYS_SA_SIGINFO 0x4
#define RSYS_SA_RESTORER 0x04000000
#define RSYS_EINTR 4
#define RSYS_NR_futex 202
#define RSYS_NR_close 3
#define RSYS_NR_getpid 39
#define RSYS_NR_getuid 102
#define RSYS_NR_accept4 288
#define RSYS_NR_getsockopt 55
#define RSYS_SOCK_CLOEXEC 02000000
#define RSYS_SOL_SOCKET 1
#define RSYS_SO_PEERCRED 17
#define RSYS_ECONNABORTED 103
#define RSYS_FUTEX_WAIT 0

/* Labels in the assembly below, used by the interrupt handler. */
extern char rsys_server_call_end[] __attribute__((visibility("hidden")));
long rsys_server_call(struct rsys_request *request, uint64_t seq)
    __attribute__((visibility("hidden")));

/* rsys_syscall(a1, a2, a3, a4, a5, a6, number): the System V ABI puts the
 * first six arguments in rdi, rsi, rdx, rcx, r8, r9 and `number` on the stack;
 * the kernel wants the fourth argument in r10 and the number in rax.  rbx is
 * callee-saved, so it keeps the syscall number across the syscall instruction
 * where both parent and child can see it.
 *
 * rsys_server_call(request, seq) is the server's own entry: the same, with
 * the arguments loaded from a struct rsys_request and the request's number
 * `seq` held in r12 across the syscall, so that the interrupt handler can
 * tell which request a signal interrupted (rsys_server_call_end is the
 * instruction after the syscall, where an interrupted syscall returns). */
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
    ".globl rsys_server_call\n"
    ".hidden rsys_server_call\n"
    ".globl rsys_server_call_end\n"
    ".hidden rsys_server_call_end\n"
    ".type rsys_server_call, @function\n"
    "rsys_server_call:\n"
    "    push %rbx\n"
    "    push %r12\n"
    "    mov %rsi, %r12\n"
    "    mov 0(%rdi), %rax\n"
    "    mov %rax, %rbx\n"
    "    mov 16(%rdi), %rsi\n"
    "    mov 24(%rdi), %rdx\n"
    "    mov 32(%rdi), %r10\n"
    "    mov 40(%rdi), %r8\n"
    "    mov 48(%rdi), %r9\n"
    "    mov 8(%rdi), %rdi\n"
    "    syscall\n"
    "rsys_server_call_end:\n"
    "    test %rax, %rax\n"
    "    jnz 2f\n"
    "    cmp $56, %rbx\n"
    "    je rsys_child_trampoline\n"
    "    cmp $435, %rbx\n"
    "    je rsys_child_trampoline\n"
    "2:  pop %r12\n"
    "    pop %rbx\n"
    "    ret\n"
    ".size rsys_server_call, .-rsys_server_call\n"
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
    "\n"
    ".globl rsys_signal_restorer\n"
    ".type rsys_signal_restorer, @function\n"
    "rsys_signal_restorer:\n"
    "    mov $15, %eax\n"       /* rt_sigreturn */
    "    syscall\n"
    "    hlt\n"
    ".size rsys_signal_restorer, .-rsys_signal_restorer\n"
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

static int skipped(struct rsys_server_state *state, uint64_t seq)
{
    for (int i = 0; i < RSYS_SKIP_SLOTS; i++) {
        if (state->skip[i] == seq)
            return 1;
    }
    return 0;
}

/* A persistent server's connection ended: close it and take the next
 * connection on the listener from a process of our own user (the socket's
 * 0600 mode in a 0700 directory says so already; SO_PEERCRED makes sure),
 * greeting it with the magic and our pid.  The new connection numbers its
 * requests from 1 again.  Returns the new fd, or -1. */
static long next_connection(struct rsys_server_state *state, long old)
{
    rsys_syscall(old, 0, 0, 0, 0, 0, RSYS_NR_close);
    long listener = (long)state->listener - 1;
    long uid = rsys_syscall(0, 0, 0, 0, 0, 0, RSYS_NR_getuid);
    uint64_t hello[2] = {RSYS_PERSISTENT_MAGIC,
                         (uint64_t)rsys_syscall(0, 0, 0, 0, 0, 0, RSYS_NR_getpid)};
    for (;;) {
        long fd = rsys_syscall(listener, 0, 0, RSYS_SOCK_CLOEXEC, 0, 0, RSYS_NR_accept4);
        if (fd == -RSYS_EINTR || fd == -RSYS_ECONNABORTED)
            continue;
        if (fd < 0)
            return -1;
        struct { int32_t pid; uint32_t uid; uint32_t gid; } cred;
        uint32_t size = sizeof(cred);
        if (rsys_syscall(fd, RSYS_SOL_SOCKET, RSYS_SO_PEERCRED, (long)&cred, (long)&size, 0,
                         RSYS_NR_getsockopt) < 0
            || size != sizeof(cred) || cred.uid != (uint32_t)uid
            || write_all(fd, (const char *)hello, sizeof(hello))) {
            rsys_syscall(fd, 0, 0, 0, 0, 0, RSYS_NR_close);
            continue;
        }
        state->current = 0;
        for (int i = 0; i < RSYS_SKIP_SLOTS; i++)
            state->skip[i] = 0;
        return fd;
    }
}

static int persistent(struct rsys_server_state *state, long infd, long outfd)
{
    return state && state->listener && infd == outfd;
}

long rsys_server(long infd, long outfd, struct rsys_server_state *state)
{
    struct rsys_request request;
    uint64_t seq = 0;
    for (;;) {
        if (read_exact(infd, (char *)&request, sizeof(request))) {
            if (!persistent(state, infd, outfd))
                return 0;
            infd = outfd = next_connection(state, infd);
            if (infd < 0)
                return 1;
            seq = 0;
            continue;
        }
        seq++;
        rsys_response response;
        if (state) {
            state->current = seq;
            /* Pairs with the fence in rsys_request_skip: either we see its
             * skip slot, or it sees this request has started. */
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (skipped(state, seq)) {
                response = -RSYS_EINTR;
                goto answer;
            }
        }
        /* Answer each request before reading the next: a later request may
         * block (epoll_wait), and the caller may be waiting on this answer
         * to decide what wakes it. */
        response = rsys_server_call(&request, seq);
    answer:
        if (write_all(outfd, (const char *)&response, sizeof(response))) {
            if (!persistent(state, infd, outfd))
                return 1;
            /* The answer is lost with the connection that asked. */
            infd = outfd = next_connection(state, infd);
            if (infd < 0)
                return 1;
            seq = 0;
        }
    }
}

int rsys_request_skip(struct rsys_server_state *state, uint64_t seq)
{
    uint64_t current = state->current;
    if (current >= seq)
        return 0;
    for (int i = 0; i < RSYS_SKIP_SLOTS; i++) {
        /* A slot naming a request that already started is free: the
         * server has looked at it for the last time. */
        if (state->skip[i] < current || state->skip[i] == 0) {
            state->skip[i] = seq;
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (state->current < seq)
                return 1;
            return 0;
        }
    }
    return 0;
}

void rsys_interrupt_handler(long sig, void *info, void *context)
{
    uint64_t *gregs = (uint64_t *)((char *)context + RSYS_UC_GREGS_OFFSET);
    if (gregs[RSYS_REG_RIP] != (uint64_t)rsys_server_call_end)
        return; /* not in a request's syscall: nothing to interrupt */
    if ((int64_t)gregs[RSYS_REG_RAX] != -RSYS_EINTR)
        return; /* it completed, or the kernel restarts it anyway */
    int32_t code = *(int32_t *)((char *)info + RSYS_SI_CODE_OFFSET);
    uint64_t target = *(uint64_t *)((char *)info + RSYS_SI_VALUE_OFFSET);
    if (code == RSYS_SI_QUEUE && target == gregs[RSYS_REG_R12])
        return; /* the request that was cancelled: let it fail with EINTR */
    /* A late signal, meant for a request that has finished: run this one
     * again from the start, as SA_RESTART would have.  The kernel keeps the
     * argument registers; rbx still holds the syscall number. */
    gregs[RSYS_REG_RAX] = gregs[RSYS_REG_RBX];
    gregs[RSYS_REG_RIP] -= 2; /* the syscall instruction is 2 bytes */
}

/* The kernel's struct sigaction for rt_sigaction(2) (<asm/signal.h>). */
struct rsys_kernel_sigaction {
    void (*handler)(long, void *, void *);
    uint64_t flags;
    void (*restorer)(void);
    uint64_t mask;
};

long rsys_child_main(long fd, long state, long parent_pid)
{
    if (rsys_syscall(RSYS_PR_SET_PDEATHSIG, RSYS_SIGKILL, 0, 0, 0, 0, RSYS_NR_prctl) < 0)
        return 1;
    /* If the parent died before the line above, no signal will come: we
     * would already have been reparented. */
    if (rsys_syscall(0, 0, 0, 0, 0, 0, RSYS_NR_getppid) != parent_pid)
        return 1;
    /* The parent makes the socket pair non-blocking for its own end; this
     * end is a separate open file, and the server wants blocking reads. */
    long flags = rsys_syscall(fd, RSYS_F_GETFL, 0, 0, 0, 0, RSYS_NR_fcntl);
    if (flags < 0 || rsys_syscall(fd, RSYS_F_SETFL, flags & ~RSYS_O_NONBLOCK, 0, 0, 0,
                                  RSYS_NR_fcntl) < 0)
        return 1;
    /* Every signal blocked while the handler runs; no SA_RESTART, so the
     * signal makes a blocking syscall return EINTR. */
    struct rsys_kernel_sigaction action = {
        .handler = rsys_interrupt_handler,
        .flags = RSYS_SA_SIGINFO | RSYS_SA_RESTORER,
        .restorer = rsys_signal_restorer,
        .mask = ~(uint64_t)0,
    };
    if (rsys_syscall(RSYS_INTERRUPT_SIGNAL, (long)&action, 0, 8, 0, 0, RSYS_NR_rt_sigaction) < 0)
        return 1;
    /* We inherited the mask of whatever thread cloned us. */
    uint64_t interrupt = (uint64_t)1 << (RSYS_INTERRUPT_SIGNAL - 1);
    if (rsys_syscall(RSYS_SIG_UNBLOCK, (long)&interrupt, 0, 8, 0, 0, RSYS_NR_rt_sigprocmask) < 0)
        return 1;
    return rsys_server(fd, fd, (struct rsys_server_state *)state);
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
