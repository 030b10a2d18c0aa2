/* The C baseline for a child-thread syscall round trip: two processes
 * ping-pong a 56-byte request and an 8-byte answer over a socketpair, as
 * rsyscall's connection does.  Prints the mean round trip in nanoseconds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    int sv[2];
    char request[56] = {0};
    int64_t answer = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        while (read(sv[1], request, sizeof request) > 0)
            if (write(sv[1], &answer, sizeof answer) != sizeof answer)
                _exit(1);
        _exit(0);
    }
    close(sv[1]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < rounds; i++) {
        if (write(sv[0], request, sizeof request) != sizeof request ||
            read(sv[0], &answer, sizeof answer) != sizeof answer)
            return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    close(sv[0]);
    waitpid(pid, NULL, 0);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("%.0f\n", ns / rounds);
    return 0;
}
