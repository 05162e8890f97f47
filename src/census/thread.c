/* thread.c: how the library starts its threads (the scan thread, the
 * writer thread): with every asynchronous signal blocked, so signals stay
 * with the caller's threads as before (a handler there cancels; a wait in
 * the new thread is never cut short), and the faults left deliverable, so a
 * crash in the thread is still reported as one. */
#include <pthread.h>
#include <signal.h>

#include "../common.h"

int sf_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
