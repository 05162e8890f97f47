/* stage_test.c DIR: the output's stage chain (src/sink/), in a scratch
 * directory DIR:
 *   - chain order: [gzip | zstd] -> file, by option and by suffix ("auto"),
 *     plain for a descriptor unless asked;
 *   - finish makes nothing visible (the previous file stays, the temporary
 *     file is complete); publish then renames; order and state errors;
 *   - codec round trips: gzip (every engine: levels 1, 2, 3, 9, best; one
 *     stream, and blocks on 1 and 2 workers, the same bytes either way;
 *     block boundaries; input that does not compress) and
 *     zstd (inline and with workers, levels 1, 3, best) decoded here with
 *     zlib and libzstd to exactly the bytes written: empty, one byte, and
 *     3 MB written in many different write sizes; bytes_out = file size;
 *   - the census with zstd workers: every allocation tagged "sink", live
 *     bytes back to the baseline after free;
 *   - a durable file's synced pages leave the page cache (posix_fadvise
 *     wrapped too), end to end, unless "cache" is "keep";
 *   - a durable file takes a step every sync_step bytes (fdatasync and
 *     sync_file_range wrapped: -Wl,--wrap=...): the step's writeback
 *     started, the previous one's waited for (the waits tile the file from
 *     0), an fdatasync on the flusher thread; none with 0 or for a
 *     descriptor; a failing fdatasync or writeback fails the write and
 *     publishes nothing; without sync_file_range (EINVAL), an fdatasync
 *     each step;
 *   - option errors.
 * Prints PASS/FAIL lines; exit 1 on failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "check.h"
#include "sink/sink.h"

static const char *dir;

/* fdatasync, counted, failing on demand (called on the flusher thread:
 * atomics). */
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
static _Atomic int syncs, sync_fail;
int __wrap_fdatasync(int fd)
{
    syncs++;
    if (sync_fail) {
        errno = EIO;
        return -1;
    }
    return __real_fdatasync(fd);
}

/* sync_file_range, counted: writebacks started, and the waits, which must
 * tile the file from 0; failing on demand with sfr_fail's errno (only the
 * waits with sfr_fail_waits). */
int __real_sync_file_range(int fd, off_t off, off_t len, unsigned int flags);
int __wrap_sync_file_range(int fd, off_t off, off_t len, unsigned int flags);
static int sfr_starts, sfr_waits, sfr_gap, sfr_fail, sfr_fail_waits;
static off_t sfr_waited;
int __wrap_sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
    if (sfr_fail && (!sfr_fail_waits || (flags & SYNC_FILE_RANGE_WAIT_AFTER))) {
        errno = sfr_fail;
        return -1;
    }
    if (flags & SYNC_FILE_RANGE_WAIT_AFTER) {
        sfr_waits++;
        sfr_gap |= off != sfr_waited;
        sfr_waited = off + len;
    } else {
        sfr_starts++;
    }
    return __real_sync_file_range(fd, off, len, flags);
}

/* Waits (up to 5 s) until the flusher thread has run an fdatasync: a
 * flush asked for is dropped if the sink finishes first, so a test that
 * counts or fails them waits for one before its commit. */
static void wait_for_flusher(void)
{
    for (int i = 0; i < 5000 && syncs == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static void sfr_reset(void)
{
    syncs = 0;
    sfr_starts = sfr_waits = sfr_gap = 0;
    sfr_waited = 0;
}

/* posix_fadvise, recorded: how many DONTNEED calls and the bytes they
 * covered, from where to where (the ranges must tile the file). */
int __real_posix_fadvise(int fd, off_t off, off_t len, int advice);
int __wrap_posix_fadvise(int fd, off_t off, off_t len, int advice);
static int drops, drop_gap, drop_mid_page;
static off_t drop_end;
int __wrap_posix_fadvise(int fd, off_t off, off_t len, int advice)
{
    if (advice == POSIX_FADV_DONTNEED) {
        drops++;
        drop_gap |= off != drop_end;
        drop_mid_page += drop_end % 4096 != 0; /* the previous range ended mid-page */
        drop_end = off + len;
    }
    return __real_posix_fadvise(fd, off, len, advice);
}

static char *path_of(const char *name)
{
    static char p[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The whole file, malloc'ed (NULL if missing); *n its size. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

/* Temporary files left in DIR. */
static int temps(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".sqlfeed-") != NULL;
    if (d)
        closedir(d);
    return n;
}

static sf_output *open_with(sf_census *c, const char *path, const char *const *opts)
{
    sf_output *o = sf_output_create(c);
    for (; opts && *opts; opts += 2)
        if (sf_output_set_option(o, opts[0], opts[1]) != SF_OK)
            printf("# option %s=%s: %s\n", opts[0], opts[1], sf_output_errmsg(o));
    if (sf_output_open_file(o, path) != SF_OK)
        printf("# open %s: %s\n", path, sf_output_errmsg(o));
    return o;
}

/* The names of the chain's stages, head to tail: "gzip>file". */
static const char *chain(const sf_output *o)
{
    static char b[128];
    b[0] = '\0';
    for (sf_stage *s = o->head; s; s = s->next)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%s", b[0] ? ">" : "", s->vt->name);
    return b;
}

static void test_chain_order(void)
{
    static const struct {
        const char *name, *compress, *want;
    } cases[] = {
        {"a.xml", NULL, "hop>file"},          {"a.xml.gz", NULL, "hop>gzip>file"},
        {"a.xml.zst", NULL, "hop>zstd>file"}, {"a.gz.xml", NULL, "hop>file"},
        {"a.xml", "gzip", "hop>gzip>file"},   {"a.xml", "zstd", "hop>zstd>file"},
        {"a.xml.gz", "none", "hop>file"},     {"a.xml.zst", "auto", "hop>zstd>file"},
        {"a.xml.gz", "zstd", "hop>zstd>file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *opts[] = {"compress", cases[i].compress, NULL};
        sf_output *o = open_with(NULL, path_of(cases[i].name), cases[i].compress ? opts : NULL);
        char name[128];
        snprintf(name, sizeof name, "chain: %s with compress=%s is %s", cases[i].name,
                 cases[i].compress ? cases[i].compress : "(default)", cases[i].want);
        check(!strcmp(chain(o), cases[i].want), name, "got %s", chain(o));
        sf_output_free(o);
    }
    /* A descriptor: auto is plain; asked, the codec is there. */
    int fd = open(path_of("fd.out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sf_output *o = sf_output_create(NULL);
    sf_output_open_fd(o, fd, "fd");
    check(!strcmp(chain(o), "hop>file"), "chain: a descriptor with auto is plain", "got %s",
          chain(o));
    sf_output_free(o);
    o = sf_output_create(NULL);
    sf_output_set_option(o, "compress", "gzip");
    sf_output_open_fd(o, fd, "fd");
    check(!strcmp(chain(o), "hop>gzip>file"), "chain: a descriptor with compress=gzip", "got %s",
          chain(o));
    sf_output_write(o, "x", 1);
    check(sf_output_commit(o) == SF_OK, "chain: a gzip descriptor commits", "%s",
          sf_output_errmsg(o));
    sf_output_free(o);
    close(fd);
    size_t n = 0;
    unsigned char *b = slurp(path_of("fd.out"), &n);
    check(b && n > 18 && b[0] == 0x1f && b[1] == 0x8b, "chain: the descriptor got gzip",
          "%zu bytes", n);
    free(b);
    check(temps() == 0, "chain: no temporary file left", "%d", temps());
}

static void test_finish_publish(void)
{
    const char *p = path_of("fp.xml");
    put(p, "previous");
    sf_output *o = open_with(NULL, p, NULL);
    check(sf_output_publish(o) == SF_ERR_STATE, "publish before finish: SF_ERR_STATE", "%s",
          sf_output_errmsg(o));
    sf_output_write(o, "new document", 12);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", sf_output_temp_path(o));
    check(sf_output_finish(o) == SF_OK, "finish: SF_OK", "%s", sf_output_errmsg(o));
    size_t n = 0;
    unsigned char *b = slurp(p, &n);
    check(b && n == 8 && !memcmp(b, "previous", 8), "finish: nothing visible, previous in place",
          "%.*s", (int)n, b ? (char *)b : "");
    free(b);
    b = slurp(tmp, &n);
    check(b && n == 12 && !memcmp(b, "new document", 12),
          "finish: the temporary file holds the whole document", "%zu bytes", n);
    free(b);
    check(!sf_output_published(o), "finish: not published", "published");
    check(sf_output_write(o, "x", 1) == SF_ERR_STATE, "write after finish: SF_ERR_STATE", "%s",
          sf_output_errmsg(o));
    check(sf_output_finish(o) == SF_OK, "finish twice: SF_OK (nothing more done)", "%s",
          sf_output_errmsg(o));
    check(sf_output_publish(o) == SF_OK && sf_output_published(o), "publish after finish",
          "%s", sf_output_errmsg(o));
    b = slurp(p, &n);
    check(b && n == 12 && !memcmp(b, "new document", 12), "publish: the new document in place",
          "%zu bytes", n);
    free(b);
    check(sf_output_publish(o) == SF_ERR_STATE, "publish twice: SF_ERR_STATE", "%s",
          sf_output_errmsg(o));
    check(sf_output_part_count(o) == 1 && !strcmp(sf_output_part_path(o, 0), p) &&
              sf_output_part_bytes(o, 0) == 12 && sf_output_bytes_out(o) == 12,
          "parts: one part, its path and bytes", "count %zu", sf_output_part_count(o));
    sf_output_free(o);

    /* Finished, never published, freed: the temporary file goes. */
    put(p, "previous");
    o = open_with(NULL, p, (const char *[]){"compress", "zstd", NULL});
    sf_output_write(o, "abc", 3);
    sf_output_count_row(o);
    sf_output_count_row(o);
    check(sf_output_finish(o) == SF_OK && temps() == 1, "finish (zstd): the temporary file stays",
          "%d temporary files: %s", temps(), sf_output_errmsg(o));
    check(sf_output_part_rows(o, 0) == 2, "parts: rows counted", "%llu",
          (unsigned long long)sf_output_part_rows(o, 0));
    sf_output_free(o);
    b = slurp(p, &n);
    check(b && n == 8 && temps() == 0, "free after finish: previous kept, temporary file removed",
          "%d temporary files", temps());
    free(b);
    /* commit = finish + publish, from open. */
    o = open_with(NULL, p, NULL);
    sf_output_write(o, "c", 1);
    check(sf_output_commit(o) == SF_OK && sf_output_published(o), "commit: finish + publish",
          "%s", sf_output_errmsg(o));
    check(sf_output_commit(o) == SF_ERR_STATE, "commit after commit: SF_ERR_STATE", "%s",
          sf_output_errmsg(o));
    sf_output_free(o);
}

/* Decoders: the whole file into a malloc'ed buffer; -1 on a bad stream. */
static long gunzip_all(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 31) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    long got = rc == Z_STREAM_END && z.avail_in == 0 ? (long)z.total_out : -1;
    inflateEnd(&z);
    return got;
}

static long unzstd_all(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    size_t r = 1;
    while (ib.pos < ib.size && !ZSTD_isError(r))
        r = ZSTD_decompressStream(d, &ob, &ib);
    ZSTD_freeDCtx(d);
    return !ZSTD_isError(r) && r == 0 && n > 0 ? (long)ob.pos : -1;
}

/* 3 MB of feed-like text: compressible, not trivially so. */
static unsigned char *corpus(size_t n)
{
    unsigned char *b = malloc(n);
    uint32_t x = 2463534242u;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        int k = snprintf((char *)b + i, n - i, "<job><id>%u</id><title>Engineer %u</title></job>\n",
                         x % 100000u, (x >> 8) % 977u);
        i += k > 0 && (size_t)k < n - i ? (size_t)k : n - i;
    }
    return b;
}

static void roundtrip(const char *codec, const char *level, const char *workers,
                      const unsigned char *data, size_t n, const char *what)
{
    const char *p = path_of(!strcmp(codec, "gzip") ? "rt.xml.gz" : "rt.xml.zst");
    sf_output *o = open_with(NULL, p,
                             (const char *[]){"level", level, "workers", workers, NULL});
    /* Writes of many sizes, some larger than the output buffer. */
    static const size_t sizes[] = {1, 7, 4096, 65537, 300000, 3, 262144, 1000};
    size_t at = 0;
    for (int k = 0; at < n; k++) {
        size_t w = sizes[k % 8] < n - at ? sizes[k % 8] : n - at;
        if (sf_output_write(o, data + at, w) != SF_OK)
            break;
        at += w;
    }
    sf_status st = sf_output_commit(o);
    size_t fn = 0;
    unsigned char *f = slurp(p, &fn);
    unsigned char *back = malloc(n + 1);
    long got = !f ? -1
               : !strcmp(codec, "gzip") ? gunzip_all(f, fn, back, n + 1)
                                         : unzstd_all(f, fn, back, n + 1);
    char name[160];
    snprintf(name, sizeof name, "round trip: %s level %s workers %s, %s: decodes to the input",
             codec, level, workers, what);
    check(st == SF_OK && got == (long)n && !memcmp(back, data, n), name,
          "status %d, %ld of %zu bytes back: %s", st, got, n, sf_output_errmsg(o));
    snprintf(name, sizeof name, "round trip: %s level %s workers %s, %s: bytes_out = file size",
             codec, level, workers, what);
    check(sf_output_bytes_out(o) == fn && sf_output_bytes(o) == n, name, "%llu vs %zu",
          (unsigned long long)sf_output_bytes_out(o), fn);
    free(f);
    free(back);
    sf_output_free(o);
}

/* The bytes of a gzip render of data[0, n) at `level` on `workers`. */
static unsigned char *gzip_bytes(const char *level, const char *workers,
                                 const unsigned char *data, size_t n, size_t *len)
{
    const char *p = path_of("same.xml.gz");
    sf_output *o = open_with(NULL, p, (const char *[]){"level", level, "workers", workers, NULL});
    for (size_t at = 0; at < n; at += 100000)
        sf_output_write(o, data + at, n - at < 100000 ? n - at : 100000);
    sf_status st = sf_output_commit(o);
    sf_output_free(o);
    return st == SF_OK ? slurp(p, len) : NULL;
}

static void test_roundtrips(void)
{
    size_t big = 3u << 20;
    unsigned char *data = corpus(big);
    static const char *const gz[] = {"1", "2", "3", "9", "best"};
    static const char *const gzw[] = {"0", "1", "2"};
    for (size_t i = 0; i < 5; i++)
        for (size_t w = 0; w < 3; w++) {
            roundtrip("gzip", gz[i], gzw[w], data, 0, "empty");
            roundtrip("gzip", gz[i], gzw[w], (const unsigned char *)"x", 1, "one byte");
            roundtrip("gzip", gz[i], gzw[w], data, big, "3 MB (12 whole blocks)");
        }
    /* Blocks are 256 KiB: one byte either side of a boundary, a dictionary
     * shorter than 32 KiB never (every block but the last is whole). */
    static const size_t edge[] = {(256u << 10) - 1, 256u << 10, (256u << 10) + 1,
                                  (1u << 20) + 17};
    for (size_t e = 0; e < 4; e++) {
        char what[64];
        snprintf(what, sizeof what, "%zu bytes", edge[e]);
        roundtrip("gzip", "1", "2", data, edge[e], what);
        roundtrip("gzip", "6", "2", data, edge[e], what);
    }
    /* Input that does not compress: a block's output grows past its buffer. */
    size_t rn = 2u << 20;
    unsigned char *rnd = malloc(rn);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < rn; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rnd[i] = (unsigned char)(x >> 32);
    }
    roundtrip("gzip", "1", "2", rnd, rn, "2 MB that do not compress");
    roundtrip("gzip", "9", "2", rnd, rn, "2 MB that do not compress");
    free(rnd);
    /* The bytes do not depend on the threads: blocks on 1 worker, on 2,
     * twice; the ratio as one stream's, within 0.1 %. */
    for (size_t i = 0; i < 2; i++) {
        const char *lv = i ? "6" : "1";
        size_t n1 = 0, n2 = 0, n3 = 0, n0 = 0;
        unsigned char *b1 = gzip_bytes(lv, "1", data, big, &n1);
        unsigned char *b2 = gzip_bytes(lv, "2", data, big, &n2);
        unsigned char *b3 = gzip_bytes(lv, "2", data, big, &n3);
        unsigned char *b0 = gzip_bytes(lv, "0", data, big, &n0);
        char name[128];
        snprintf(name, sizeof name,
                 "gzip level %s blocks: the same bytes on 1 and 2 workers, run after run", lv);
        check(b1 && b2 && b3 && n1 == n2 && n2 == n3 && !memcmp(b1, b2, n1) &&
                  !memcmp(b2, b3, n2),
              name, "%zu, %zu, %zu bytes", n1, n2, n3);
        snprintf(name, sizeof name,
                 "gzip level %s blocks: as small as one stream, within 0.1 %%", lv);
        check(b0 && n2 && (double)n2 <= (double)n0 * 1.001, name, "%zu bytes against %zu", n2,
              n0);
        free(b0);
        free(b1);
        free(b2);
        free(b3);
    }
    static const char *const zs[][2] = {{"1", "0"}, {"3", "0"}, {"3", "2"}, {"best", "0"},
                                        {"1", "1"}};
    for (size_t i = 0; i < 5; i++) {
        roundtrip("zstd", zs[i][0], zs[i][1], data, 0, "empty");
        roundtrip("zstd", zs[i][0], zs[i][1], (const unsigned char *)"x", 1, "one byte");
        roundtrip("zstd", zs[i][0], zs[i][1], data, big, "3 MB");
    }
    free(data);
}

static void test_census(void)
{
    sf_census *c = sf_census_create();
    uint64_t base = sf_census_live_bytes(c);
    sf_mem_stat other0;
    sf_census_stat(c, SF_MEM_OTHER, &other0);
    size_t big = 6u << 20;
    unsigned char *data = corpus(big);
    sf_output *o = open_with(c, path_of("census.xml.zst"),
                             (const char *[]){"workers", "2", NULL});
    sf_output_write(o, data, big);
    sf_status st = sf_output_commit(o);
    sf_mem_stat sink;
    sf_census_stat(c, SF_MEM_SINK, &sink);
    check(st == SF_OK && sink.peak_bytes > (4u << 20),
          "census: zstd with 2 workers allocates through the census, tagged sink",
          "status %d, sink peak %llu", st, (unsigned long long)sink.peak_bytes);
    sf_output_free(o);
    sf_mem_stat other1;
    sf_census_stat(c, SF_MEM_OTHER, &other1);
    check(sf_census_live_bytes(c) == base && other1.allocs == other0.allocs,
          "census: live bytes back to the baseline after free (workers joined)",
          "%llu live, baseline %llu", (unsigned long long)sf_census_live_bytes(c),
          (unsigned long long)base);
    /* zlib and ISA-L too, as one stream and in blocks on workers (their
     * buffers and engines allocated through the census, tagged sink). */
    for (int k = 0; k < 4; k++) {
        static const char *const name[] = {
            "census: gzip (ISA-L, one stream) back to the baseline",
            "census: gzip (zlib, one stream) back to the baseline",
            "census: gzip (ISA-L, blocks on 2 workers) through the census, back to the baseline",
            "census: gzip (zlib, blocks on 2 workers) through the census, back to the baseline"};
        o = open_with(c, path_of("census.xml.gz"),
                      (const char *[]){"level", k % 2 ? "6" : "1", "workers", k < 2 ? "0" : "2",
                                       NULL});
        sf_output_write(o, data, big);
        sf_census_stat(c, SF_MEM_SINK, &sink); /* live while the workers run */
        st = sf_output_commit(o);
        sf_output_free(o);
        check(st == SF_OK && sf_census_live_bytes(c) == base &&
                  (k < 2 || sink.bytes > (2u << 20)),
              name[k], "%llu live, sink %llu while open",
              (unsigned long long)sf_census_live_bytes(c), (unsigned long long)sink.bytes);
    }
    /* Freed mid-stream, workers busy: joined, nothing left. */
    o = open_with(c, path_of("census.xml.gz"), (const char *[]){"workers", "2", NULL});
    sf_output_write(o, data, big);
    sf_output_free(o);
    check(sf_census_live_bytes(c) == base && temps() == 0,
          "gzip on 2 workers freed mid-stream: workers joined, memory back, no temporary file",
          "%llu live, %d temporary files", (unsigned long long)sf_census_live_bytes(c), temps());
    free(data);
    sf_census_free(c);
}

static void test_sync_step(void)
{
    size_t big = 1u << 20;
    unsigned char *data = corpus(big);
    const char *p = path_of("sync.xml");
    put(p, "previous");
    sfr_reset();
    sf_output *o = open_with(NULL, p, (const char *[]){"sync_step", "64K", NULL});
    for (size_t at = 0; at < big; at += 16384)
        sf_output_write(o, data + at, 16384);
    wait_for_flusher();
    sf_status st = sf_output_commit(o);
    /* The output buffer drains in 256 KiB pieces: each passes a 64 KiB
     * step. Four steps: four writebacks started, the first three waited
     * for by the next step ([0, 768K) end to end; the final fsync waits for
     * the last), and the flusher's fdatasyncs: one a step, fewer when a
     * step comes while the last one still runs. */
    size_t n = 0;
    unsigned char *b = slurp(p, &n);
    check(st == SF_OK && sfr_starts == 4 && sfr_waits == 3 && !sfr_gap &&
              sfr_waited == 3 * (256 << 10) && syncs >= 1 && syncs <= 4 && b && n == big &&
              !memcmp(b, data, big),
          "sync_step 64K: a step per 256 KiB drained: writeback started, the previous waited "
          "for, flushed by the flusher",
          "%d started, %d waits up to %lld (gap %d), %d fdatasync: %s", sfr_starts, sfr_waits,
          (long long)sfr_waited, sfr_gap, (int)syncs, sf_output_errmsg(o));
    free(b);
    sf_output_free(o);
    sfr_reset();
    o = open_with(NULL, p, (const char *[]){"sync_step", "0", NULL});
    sf_output_write(o, data, big);
    sf_output_commit(o);
    check(syncs == 0 && sfr_starts + sfr_waits == 0, "sync_step 0: no step", "%d, %d",
          (int)syncs, sfr_starts + sfr_waits);
    sf_output_free(o);
    sfr_reset();
    o = open_with(NULL, p, NULL);
    sf_output_write(o, data, big);
    sf_output_commit(o);
    check(syncs == 0 && sfr_starts + sfr_waits == 0, "sync_step default (32M): none for 1 MiB",
          "%d, %d", (int)syncs, sfr_starts + sfr_waits);
    sf_output_free(o);
    /* writer=inline: the same steps, on the caller's thread, and no
     * flusher thread (no fdatasync before the final fsync). */
    sfr_reset();
    o = open_with(NULL, p, (const char *[]){"sync_step", "64K", "writer", "inline", NULL});
    for (size_t at = 0; at < big; at += 16384)
        sf_output_write(o, data + at, 16384);
    st = sf_output_commit(o);
    b = slurp(p, &n);
    check(st == SF_OK && sfr_starts == 4 && sfr_waits == 3 && !sfr_gap && syncs == 0 && b &&
              n == big && !memcmp(b, data, big),
          "sync_step 64K, writer inline: the steps, and no flusher",
          "status %d, %d started, %d waits, %d fdatasync: %s", st, sfr_starts, sfr_waits,
          (int)syncs, sf_output_errmsg(o));
    free(b);
    sf_output_free(o);
    /* Without sync_file_range (a file system that refuses it): an
     * fdatasync at each step, on the writer's thread. */
    sfr_reset();
    sfr_fail = EINVAL;
    o = open_with(NULL, p, (const char *[]){"sync_step", "64K", NULL});
    for (size_t at = 0; at < big; at += 16384)
        sf_output_write(o, data + at, 16384);
    st = sf_output_commit(o);
    sfr_fail = 0;
    b = slurp(p, &n);
    check(st == SF_OK && syncs == 4 && b && n == big && !memcmp(b, data, big),
          "sync_step without sync_file_range (EINVAL): an fdatasync each step",
          "status %d, %d fdatasync: %s", st, (int)syncs, sf_output_errmsg(o));
    free(b);
    sf_output_free(o);
    /* A descriptor is not ours to sync. */
    int fd = open(path_of("sync.fd"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sfr_reset();
    drops = 0;
    o = sf_output_create(NULL);
    sf_output_set_option(o, "sync_step", "4K");
    sf_output_open_fd(o, fd, "fd");
    sf_output_write(o, data, big);
    sf_output_commit(o);
    check(syncs == 0 && sfr_starts + sfr_waits == 0,
          "sync_step: a descriptor is never synced", "%d, %d", (int)syncs,
          sfr_starts + sfr_waits);
    check(drops == 0, "cache: a descriptor's pages are never dropped", "%d", drops);
    sf_output_free(o);
    close(fd);
    /* Cache: each synced step and then the rest leave the page cache, the
     * ranges end to end over the whole file; "keep" leaves them; a
     * descriptor's pages are not ours. */
    static const struct {
        const char *cache;
        int want_drops;
        const char *name;
    } dc[] = {
        {NULL, 4, "cache drop (default): each 256 KiB step once written back, then the rest, "
                  "dropped end to end"},
        {"drop", 4, "cache drop: the same"},
        {"keep", 0, "cache keep: nothing dropped"},
    };
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
        drops = drop_gap = 0;
        drop_end = 0;
        const char *opts[] = {"sync_step", "64K", dc[i].cache ? "cache" : NULL, dc[i].cache, NULL};
        o = open_with(NULL, p, opts);
        for (size_t at = 0; at < big; at += 16384)
            sf_output_write(o, data + at, 16384);
        sf_output_write(o, data, 1000); /* a last step shorter than sync_step */
        st = sf_output_commit(o);
        off_t size = (off_t)(big + 1000);
        check(st == SF_OK && drops == dc[i].want_drops && !drop_gap &&
                  drop_end == (dc[i].want_drops ? size : 0),
              dc[i].name, "status %d, %d drops, gap %d, up to %lld of %lld", st, drops, drop_gap,
              (long long)drop_end, (long long)size);
        sf_output_free(o);
    }
    /* Compressed, the steps end mid-page: each range is dropped up to the
     * page it ends in (the kernel would drop that partial page, then read
     * it back for the next write), the last one to the end of the file. */
    drops = drop_gap = drop_mid_page = 0;
    drop_end = 0;
    const char *gz = path_of("sync.xml.gz");
    o = open_with(NULL, gz, (const char *[]){"sync_step", "16K", NULL});
    for (size_t at = 0; at < big; at += 16384)
        sf_output_write(o, data + at, 16384);
    st = sf_output_commit(o);
    struct stat sb;
    off_t gsize = stat(gz, &sb) == 0 ? sb.st_size : -1;
    check(st == SF_OK && drops >= 2 && !drop_gap && drop_mid_page == 0 && drop_end == gsize &&
              gsize % 4096 != 0,
          "cache drop, steps ending mid-page: whole pages during the run, the rest at the end",
          "status %d, %d drops, gap %d, %d ended mid-page, up to %lld of %lld", st, drops,
          drop_gap, drop_mid_page, (long long)drop_end, (long long)gsize);
    sf_output_free(o);
    /* A failing fdatasync (on the flusher thread), writeback start or
     * writeback wait (the writer's) fails the render, publishes nothing. */
    static const char *const fails[] = {
        "sync_step: a failing fdatasync (the flusher's) is SF_ERR_OUTPUT naming it and the file",
        "sync_step: a failing writeback start is SF_ERR_OUTPUT naming it and the file",
        "sync_step: a failing writeback wait is SF_ERR_OUTPUT naming it and the file"};
    for (int k = 0; k < 3; k++) {
        put(p, "previous");
        syncs = 0;
        if (k)
            sfr_fail = EIO, sfr_fail_waits = k == 2;
        else
            sync_fail = 1;
        o = open_with(NULL, p, (const char *[]){"sync_step", "64K", NULL});
        st = SF_OK;
        for (size_t at = 0; at < big && st == SF_OK; at += 16384)
            st = sf_output_write(o, data + at, 16384);
        if (k == 0)
            wait_for_flusher();
        if (st == SF_OK)
            st = sf_output_commit(o);
        sync_fail = sfr_fail = sfr_fail_waits = 0;
        check(st == SF_ERR_OUTPUT && strstr(sf_output_errmsg(o), k ? "write-back" : "fdatasync") &&
                  strstr(sf_output_errmsg(o), ".sqlfeed-") &&
                  strstr(sf_output_errmsg(o), "Input/output error"),
              fails[k], "status %d: %s", st, sf_output_errmsg(o));
        sf_output_free(o);
        b = slurp(p, &n);
        check(b && n == 8 && temps() == 0, "sync_step: after the failure previous kept, no temp",
              "%d temporary files", temps());
        free(b);
    }
    free(data);
}

static void test_options(void)
{
    static const struct {
        const char *name, *value;
    } bad[] = {
        {"compress", "lz4"}, {"compress", ""},  {"level", "0"},         {"level", "abc"},
        {"level", "3x"},     {"workers", "65"}, {"workers", "-1"},      {"writer", "fork"},
        {"sync_step", "12X"}, {"sync_step", ""}, {"split_rows", "10K"}, {"split_bytes", "-5"},
        {"cache", "none"},   {"cache", ""},
        {"nosuch", "1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sf_output *o = sf_output_create(NULL);
        char name[128];
        snprintf(name, sizeof name, "option %s='%s': SF_ERR_ARG with a message", bad[i].name,
                 bad[i].value);
        sf_status st = sf_output_set_option(o, bad[i].name, bad[i].value);
        check(st == SF_ERR_ARG && *sf_output_errmsg(o), name, "status %d", st);
        sf_output_free(o);
    }
    sf_output *o = sf_output_create(NULL);
    check(sf_output_set_option(o, NULL, "x") == SF_ERR_ARG, "option: NULL name", "accepted");
    check(sf_output_set_option(o, "split_rows", "50000") == SF_OK &&
              sf_output_set_option(o, "split_bytes", "50M") == SF_OK &&
              sf_output_split_rows(o) == 50000 && sf_output_split_bytes(o) == 50u << 20,
          "options: split_rows / split_bytes kept", "%llu %llu",
          (unsigned long long)sf_output_split_rows(o), (unsigned long long)sf_output_split_bytes(o));
    check(sf_output_set_option(o, "writer", "inline") == SF_OK &&
              sf_output_set_option(o, "writer", "thread") == SF_OK,
          "options: writer thread / inline", "%s", sf_output_errmsg(o));
    /* A level the codec does not have: refused at open, nothing created. */
    sf_output_set_option(o, "level", "12");
    sf_status st = sf_output_open_file(o, path_of("lvl.xml.gz"));
    check(st == SF_ERR_ARG && strstr(sf_output_errmsg(o), "gzip") && temps() == 0,
          "level 12 for gzip: SF_ERR_ARG at open, no file", "status %d: %s", st,
          sf_output_errmsg(o));
    sf_output_free(o);
    o = open_with(NULL, path_of("late.xml"), NULL);
    check(sf_output_set_option(o, "compress", "gzip") == SF_ERR_STATE,
          "option after open: SF_ERR_STATE", "%s", sf_output_errmsg(o));
    sf_output_free(o);
    o = open_with(NULL, path_of("lvl.xml.zst"), (const char *[]){"level", "12", NULL});
    check(o->state == SF_OUT_OPEN, "level 12 for zstd: accepted", "%s", sf_output_errmsg(o));
    sf_output_free(o);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    test_chain_order();
    test_finish_publish();
    test_roundtrips();
    test_census();
    test_sync_step();
    test_options();
    printf("stage: %d passed, %d failed\n", passes, failures);
    return failures != 0;
}
