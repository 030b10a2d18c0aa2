/* The freestanding core of rsyscall: no libc, no Python.
 *
 * These functions run in processes we clone that share our address space but
 * not our libc state (no TLS of their own, so no errno), and later in a static
 * stub executable.  They only use raw system calls.
 */
#ifndef RSYS_H
#define RSYS_H

#include <stdint.h>

/* One request on a syscall connection: the number and six arguments. */
struct rsys_request {
    int64_t number;
    int64_t args[6];
};

/* The answer to a request: the raw return value (-errno on failure). */
typedef int64_t rsys_response;

/* How many cancelled-before-they-started requests a server can be told to
 * skip at once (see struct rsys_server_state). */
#define RSYS_SKIP_SLOTS 8

/* A server's state, in memory the connection's other end can read and write
 * when it shares the server's address space (a CLONE_VM child).
 *
 * Requests are numbered from 1 in the order they arrive.  Before running
 * request n, the server stores n in `current`, then (after a full fence)
 * looks for n in `skip`: if it is there, the request is answered -EINTR
 * without being run.  The other end cancels a request m that has not
 * started by storing m in a free skip slot, fencing, and reading
 * `current`: if it is still below m, the server will see the slot before it
 * runs m (rsys_request_skip).  A request that is running is interrupted
 * with a signal instead (rsys_interrupt_handler). */
struct rsys_server_state {
    volatile uint64_t current;
    volatile uint64_t skip[RSYS_SKIP_SLOTS];
    /* 0, or a listening unix socket's fd + 1: when the connection ends,
     * the server accepts the next one there instead of returning (a
     * persistent thread, rsyscall.tasks.persistent). */
    volatile uint64_t listener;
};

/* What a persistent server says first on each connection it accepts:
 * "RSYSPERS" and its pid, as two little-endian u64s. */
#define RSYS_PERSISTENT_MAGIC 0x5352455053595352ULL

/* The signal that interrupts a running request: SIGURG, whose default
 * action is to do nothing, so a late one that lands after an exec harms
 * nothing.  It is sent with sigqueue semantics (si_code SI_QUEUE) and the
 * number of the request to interrupt as si_value. */
#define RSYS_INTERRUPT_SIGNAL 23

/* Where the interrupt handler finds things (x86_64; module.c checks these
 * against <signal.h> and <ucontext.h>): the registers in the ucontext_t a
 * SA_SIGINFO handler gets, as indexes of uc_mcontext.gregs, and si_code and
 * si_value in the siginfo_t. */
#define RSYS_UC_GREGS_OFFSET 40
#define RSYS_REG_R12 4
#define RSYS_REG_RBX 11
#define RSYS_REG_RAX 13
#define RSYS_REG_RIP 16
#define RSYS_SI_CODE_OFFSET 8
#define RSYS_SI_VALUE_OFFSET 24
#define RSYS_SI_QUEUE (-1)

/* Issue a system call.  Returns the raw kernel result (-4095..-1 is -errno).
 *
 * When `number` is clone or clone3 and this is the new child, the child is on
 * the stack the caller prepared (see rsys_stack_layout below): it pops a
 * function pointer and six arguments from there, calls the function, and
 * exits with its return value.  So clone works from anywhere this is called,
 * including from inside rsys_server. */
long rsys_syscall(long a1, long a2, long a3, long a4, long a5, long a6, long number);

/* Serve syscall requests: read one struct rsys_request at a time from infd,
 * run it, write one rsys_response to outfd.  `state` may be null (then
 * nothing can be skipped).  Returns 0 on EOF of infd and 1 on any other
 * error, which the trampoline turns into the exit status; unless the state
 * names a listener, when the server takes the next connection from it
 * instead (see struct rsys_server_state). */
long rsys_server(long infd, long outfd, struct rsys_server_state *state);

/* The first function of a child thread: ask for SIGKILL when the thread
 * that cloned us dies (so no child outlives its parent unnoticed; exit at
 * once if our parent, whose pid as we see it is parent_pid, is already
 * gone), make our end of the connection blocking, install the interrupt
 * handler and unblock its signal, then serve requests on fd with `state`.
 * The server's result is the exit status. */
long rsys_child_main(long fd, long state, long parent_pid);

/* The handler of RSYS_INTERRUPT_SIGNAL (SA_SIGINFO, without SA_RESTART):
 * if the signal interrupted a syscall of rsys_server that is the request
 * named by si_value, the syscall returns -EINTR as usual; if it interrupted
 * any other request's syscall (a late signal), that syscall is restarted,
 * as SA_RESTART would.  Elsewhere it does nothing. */
void rsys_interrupt_handler(long sig, void *info, void *context);

/* Returns from a signal handler (rt_sigreturn), for sa_restorer. */
void rsys_signal_restorer(void);

/* Ask `state`'s server to skip request `seq` if it has not started it.
 * Returns 1 if it is certain to be skipped, 0 if it may already have
 * started (then it must be interrupted, or waited for).  For the other end
 * of a connection, in the server's address space. */
int rsys_request_skip(struct rsys_server_state *state, uint64_t seq);

/* Wait until the 32-bit futex word at addr is zero, then return 0.  With
 * set_tid_address(2) in a child, the kernel zeroes and wakes that word when
 * the child execs or exits, and this helper's exit shows on its pidfd. */
long rsys_futex_waiter(long addr);

/* Words the trampoline pops from a new child's stack, in order. */
#define RSYS_STACK_WORDS 7

#endif
