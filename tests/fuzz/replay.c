/* replay.c: a main() for a fuzz target without libFuzzer, so `make check`
 * replays each regression corpus (tests/fuzz/corpus/NAME/) with any compiler,
 * optimised and under ASan+UBSan.
 *
 *   replay_NAME FILE|DIR...   runs LLVMFuzzerTestOneInput on each file (the
 *                             files of a DIR in name order, not recursing)
 *
 * As libFuzzer does, each input is passed in a buffer of exactly its size (an
 * overread is a heap overflow for ASan) and LLVMFuzzerInitialize runs first
 * when the target defines it (a weak reference: NULL otherwise). A target
 * reports a failure by aborting; replay exits 1 when an input cannot be read
 * and 0 after the last one, printing "replayed N inputs". */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* fileno, scandir */
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#pragma weak LLVMFuzzerInitialize

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 0) {
        fprintf(stderr, "replay: cannot stat %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path,
                data ? (ferror(f) ? strerror(errno) : "short read") : "out of memory");
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    (void)LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        (void)LLVMFuzzerInitialize(&argc, &argv);
    unsigned long n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (replay_file(argv[i]) != 0)
                return 1;
            n++;
            continue;
        }
        struct dirent **names;
        int k = scandir(argv[i], &names, not_hidden, by_name);
        if (k < 0) {
            fprintf(stderr, "replay: cannot list %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int rc = 0;
        for (int j = 0; j < k; j++) {
            char path[4096];
            if (rc == 0) {
                int len = snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
                if (len < 0 || (size_t)len >= sizeof path) {
                    fprintf(stderr, "replay: path too long: %s/%s\n", argv[i], names[j]->d_name);
                    rc = -1;
                } else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                    /* not recursing */
                } else if ((rc = replay_file(path)) == 0) {
                    n++;
                }
            }
            free(names[j]);
        }
        free(names);
        if (rc != 0)
            return 1;
    }
    printf("replayed %lu inputs\n", n);
    return 0;
}
