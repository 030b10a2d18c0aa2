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

/* Issue a system call.  Returns the raw kernel result (-4095..-1 is -errno).
 *
 * When `number` is clone or clone3 and this is the new child, the child is on
 * the stack the caller prepared (see rsys_stack_layout below): it pops a
 * function pointer and six arguments from there, calls the function, and
 * exits with its return value.  So clone works from anywhere this is called,
 * including from inside rsys_server. */
long rsys_syscall(long a1, long a2, long a3, long a4, long a5, long a6, long number);

/* Serve syscall requests: read one struct rsys_request at a time from infd,
 * run it, write one rsys_response to outfd.  Returns 0 on EOF of infd and 1
 * on any other error, which the trampoline turns into the exit status. */
long rsys_server(long infd, long outfd);

/* An answer no syscall gives (errno 4095 does not exist): the exec watcher
 * sends it when the child has exec'd or exited. */
#define RSYS_EXEC_MARKER (-4095)

/* The first function of a child thread: ask for SIGKILL when the thread
 * that cloned us dies (so no child outlives its parent unnoticed; exit at
 * once if our parent, whose pid as we see it is parent_pid, is already
 * gone), make
 * our end of the connection blocking, start the exec watcher on the given
 * stack (if any; its pid, or -errno, goes to *watcher_pid), then serve
 * requests.  The server's result is the exit status. */
long rsys_child_main(long infd, long outfd, long watcher_stack, long watcher_stack_size,
                     long watcher_pid, long parent_pid);

/* The exec watcher: wait for the CLONE_CHILD_CLEARTID word at futex_addr
 * to clear (the child exec'd or exited), then write RSYS_EXEC_MARKER to
 * outfd, the child's end of its connection. */
long rsys_exec_watcher(long futex_addr, long outfd);

/* Wait until the 32-bit futex word at addr is zero, then return 0.  Used with
 * CLONE_CHILD_CLEARTID: the kernel zeroes and wakes that word when the child
 * execs or exits, and this helper's own exit is visible on its pidfd. */
long rsys_futex_waiter(long addr);

/* Words the trampoline pops from a new child's stack, in order. */
#define RSYS_STACK_WORDS 7

#endif
