/* set_test.c DIR: the file-set machinery of src/sink/ in a scratch
 * directory DIR: part name patterns (parse, expand, match), the run tag,
 * the state record (round trip, garbage as "no previous run"), the lock
 * (a second holder refused with SF_ERR_BUSY and the PID, released on free,
 * the lock file gone), the removal of a killed run's temporary files (only
 * those, cut names included), and the parts of a split output through the
 * public API. tests/set_test.sh runs the publication under fault injection.
 * Prints "PASS: name" / "FAIL: name: detail"; exit 1 if anything failed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "sink/set.h"
#include "sink/sink.h"
#include "sqlfeed.h"

static const char *dir;

/* The test's flock: the library's calls come here (an executable's symbol
 * comes before libc's). With `race_all` set, the first call first removes
 * every temporary file of race.xml from DIR, as a whole other run that took
 * the lock, cleaned up and let go between our temporary file's creation
 * and our flock would have. */
static int race_all, race_hit;
int flock(int fd, int op)
{
    if (race_all) {
        race_all = 0;
        DIR *d = opendir(dir);
        struct dirent *de;
        char path[4096];
        while (d && (de = readdir(d)) != NULL)
            if (!strncmp(de->d_name, ".race.xml.sqlfeed-", 18)) {
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                race_hit += unlink(path) == 0;
            }
        if (d)
            closedir(d);
    }
    return (int)syscall(SYS_flock, fd, op);
}

static void put(const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int exists(const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

/* How many entries of DIR (but . and ..). */
static int entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void clean(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[4096];
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    if (d)
        closedir(d);
}

/* ---- patterns ------------------------------------------------------------ */

static void test_pattern(sf_census *cs)
{
    sf_errbuf e;
    sf_pattern p;
    static const char *badp[] = {
        "feed.xml", "feed-%d-%d.xml", "feed-%x.xml", "feed-%r.xml", "feed-%d%r.xml",
        "feed-%r%d.xml", "feed-%r-%r-%d.xml", "feed-%010d.xml", "feed-%", "d%d/feed-%d.xml",
        "dir/", "", "feed-%0d.xml",
    };
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        sf_status st = sf_pattern_parse(&p, cs, &e, badp[i]);
        check(st == SF_ERR_ARG && strstr(e.msg, "pattern"), "pattern: a bad one refused",
              "'%s': status %d, message '%s'", badp[i], st, e.msg);
        if (st == SF_OK)
            sf_pattern_free(&p, cs);
    }
    char buf[256];
    sf_status st = sf_pattern_parse(&p, cs, &e, "out/sitemap-%r-%04d.xml.gz");
    check(st == SF_OK && !strcmp(p.dir, "out") && p.has_tag, "pattern: %r-%04d parsed", "%s",
          e.msg);
    if (st != SF_OK)
        return;
    size_t n = sf_pattern_expand(&p, "0a1b2c3d", 7, buf, sizeof buf);
    check(n && !strcmp(buf, "sitemap-0a1b2c3d-0007.xml.gz"), "pattern: expanded", "'%s'", buf);
    n = sf_pattern_expand(&p, "0a1b2c3d", 123456, buf, sizeof buf);
    check(n && !strcmp(buf, "sitemap-0a1b2c3d-123456.xml.gz"), "pattern: a number wider than N",
          "'%s'", buf);
    check(sf_pattern_expand(&p, "0a1b2c3d", 7, buf, 10) == 0, "pattern: too small a buffer",
          "expanded into 10 bytes");
    char tag[9];
    uint64_t num = 0;
    check(sf_pattern_match(&p, "sitemap-0a1b2c3d-0012.xml.gz", 28, 0, tag, &num) &&
              !strcmp(tag, "0a1b2c3d") && num == 12,
          "pattern: matched, tag and number read", "tag %s num %llu", tag,
          (unsigned long long)num);
    static const char *nomatch[] = {
        "sitemap-0a1b2c3d-012.xml.gz", "sitemap-0A1B2C3D-0012.xml.gz",
        "sitemap-0a1b2c3-0012.xml.gz", "sitemap-0a1b2c3d-0012.xml.gz.bak",
        "sitemap-0a1b2c3d-00x2.xml.gz", "xsitemap-0a1b2c3d-0012.xml.gz", "sitemap.xml.gz",
    };
    for (size_t i = 0; i < sizeof nomatch / sizeof nomatch[0]; i++)
        check(!sf_pattern_match(&p, nomatch[i], strlen(nomatch[i]), 0, NULL, NULL),
              "pattern: a name not of the pattern", "'%s' matched", nomatch[i]);
    check(sf_pattern_match(&p, "sitemap-0a1b", 12, 1, NULL, NULL) &&
              !sf_pattern_match(&p, "sitemap-0a1b", 12, 0, NULL, NULL),
          "pattern: a cut name matches as a prefix only", "wrong");
    sf_pattern_free(&p, cs);
    st = sf_pattern_parse(&p, cs, &e, "100%%-%d.txt");
    n = st == SF_OK ? sf_pattern_expand(&p, NULL, 3, buf, sizeof buf) : 0;
    check(n && !strcmp(buf, "100%-3.txt") && !strcmp(p.dir, "."), "pattern: %% is a '%'",
          "'%s' (%s)", buf, e.msg);
    if (st == SF_OK) {
        /* Digits in the text after %d: every split tried. */
        check(sf_pattern_match(&p, "100%-3.txt", 10, 0, NULL, &num) && num == 3,
              "pattern: %d without width", "num %llu", (unsigned long long)num);
        sf_pattern_free(&p, cs);
    }
    st = sf_pattern_parse(&p, cs, &e, "f%d2.xml");
    if (st == SF_OK) {
        check(sf_pattern_match(&p, "f152.xml", 8, 0, NULL, &num) && num == 15,
              "pattern: digits after %d", "num %llu", (unsigned long long)num);
        sf_pattern_free(&p, cs);
    }
}

/* ---- state record ------------------------------------------------------ */

/* Reads record `sname` for output `name` in DIR. */
static int read_rec(sf_census *cs, const char *sname, const char *name, sf_state *st)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    int ok = sf_state_read(dfd, sname, name, cs, st);
    close(dfd);
    return ok;
}

static void test_state(sf_census *cs)
{
    sf_errbuf e;
    sf_state st = {0}, back;
    static const char names[] = "a \"b\"\\c\x01.xml\0second\0";
    const char *name = "feed \"x\".xml";
    st.name = name;
    st.rows = 113954;
    st.bytes = 1ull << 40;
    st.time = 1764590000;
    memcpy(st.tag, "deadbeef", 9);
    st.parts = 2;
    st.names = names;
    st.owner = 12345678901234567890u;
    static const char rm[] = "p-cafebabe-3.xml\0p-\"q\"-4.xml";
    st.nremove = 2;
    st.remove = rm;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    char *sname = NULL, *tmp = NULL, buf[4096];
    size_t tmpcap = 0;
    int named = sf_state_names(cs, name, 255, &sname, &tmp, &tmpcap) == 0;
    size_t len = named ? sf_state_format(&st, buf, sizeof buf) : 0;
    check(len && len < sf_state_format_size(&st) && !sf_state_format(&st, buf, len),
          "state: formatted within its worst case; a short buffer refused", "%zu", len);
    len = sf_state_format(&st, buf, sizeof buf);
    sf_status s = named ? sf_state_write(dfd, dir, name, sname, tmp, tmpcap, "FEED", buf, len, &e)
                        : SF_ERR_NOMEM;
    check(s == SF_OK && !strcmp(sname, ".feed \"x\".xml.sqlfeed.state") &&
              exists(".feed \"x\".xml.sqlfeed.state") && entries() == 1,
          "state: written, no temporary file left", "%d %s (%d entries)", s, e.msg, entries());
    int ok = read_rec(cs, sname, name, &back);
    check(ok == 1 && back.rows == st.rows && back.bytes == st.bytes && back.time == st.time &&
              !strcmp(back.tag, "deadbeef") && back.parts == 2 && back.owner == st.owner &&
              back.names && !memcmp(back.names, names, sizeof names - 1) && back.nremove == 2 &&
              back.remove && !memcmp(back.remove, rm, sizeof rm),
          "state: read back as written (names, owner and the to-remove list too)", "ok %d rows %llu parts %zu", ok,
          (unsigned long long)back.rows, back.parts);
    sf_state_clear(&back, cs);
    check(!read_rec(cs, sname, "feed.xml", &back), "state: none for another output (a cut name)",
          "found one");
    sf_dealloc(cs, sname);
    sf_dealloc(cs, tmp);
    /* A record larger than the inline buffer: read through the census. */
    static char many[60000];
    size_t at = 0;
    for (int i = 0; i < 2000; i++)
        at += (size_t)snprintf(many + at, sizeof many - at, "part-%05d.xml", i) + 1;
    st.name = "g.xml";
    st.parts = 2000;
    st.names = many;
    size_t cap = sf_state_format_size(&st);
    char *big = malloc(cap);
    len = big ? sf_state_format(&st, big, cap) : 0;
    if (len) {
        big[len] = '\0';
        put(".g.xml.sqlfeed.state", big);
    }
    ok = read_rec(cs, ".g.xml.sqlfeed.state", "g.xml", &back);
    check(len > 4096 && ok == 1 && back.parts == 2000 && back.names &&
              !strcmp(back.names, "part-00000.xml"),
          "state: a large record read", "%zu bytes, ok %d, parts %zu", len, ok, back.parts);
    sf_state_clear(&back, cs);
    free(big);
    /* Garbage, truncation, wrong types, another version: "no previous run". */
    static const char *garbage[] = {
        "", "{", "{}", "null", "[]", "{\"sqlfeed_state\":1}", "{\"sqlfeed_state\":2,"
        "\"name\":\"g.xml\",\"rows\":1}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":-1}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1.5}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":99999999999999999999999}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1,\"tag\":\"xyz\"}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1,\"parts\":[1]}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1,\"parts\":[\"\"]}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1,\"parts\":[\"../x.xml\"]}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1}x",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":01}",
        "{\"sqlfeed_state\":1,\"name\":\"g\\u0000.xml\",\"rows\":1}",
        "{\"sqlfeed_state\":1,\"name\":\"g.xml\",\"rows\":1,\"parts\":[\"a\"",
        "{\"sqlfeed_state\":1,\"name\":\"h.xml\",\"rows\":1}",
        "\xff\xfe garbage",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        put(".g.xml.sqlfeed.state", garbage[i]);
        ok = read_rec(cs, ".g.xml.sqlfeed.state", "g.xml", &back);
        check(!ok, "state: garbage is no previous run", "'%s' read as a record", garbage[i]);
    }
    put(".g.xml.sqlfeed.state", " {\"rows\" : 7, \"future\":\"x\", \"n2\": 3, \"name\":\"g.xml\","
                                "\"sqlfeed_state\":1}\n");
    ok = read_rec(cs, ".g.xml.sqlfeed.state", "g.xml", &back);
    check(ok == 1 && back.rows == 7 && back.parts == 0, "state: keys in any order, unknown skipped",
          "ok %d", ok);
    close(dfd);
    clean();
}

/* ---- lock and stale temporary files ------------------------------------ */

static void test_lock(sf_census *cs)
{
    sf_errbuf e;
    sf_lock a = SF_LOCK_INIT, b = SF_LOCK_INIT;
    sf_status s = sf_lock_take(&a, cs, &e, dir, "feed.xml", "PATH/feed.xml");
    check(s == SF_OK && exists(".feed.xml.sqlfeed.lock"), "lock: taken", "%d %s", s, e.msg);
    /* flock belongs to the open file: a second open conflicts even here. */
    s = sf_lock_take(&b, cs, &e, dir, "feed.xml", "PATH/feed.xml");
    check(s == SF_ERR_BUSY && !strcmp(e.msg, "PATH/feed.xml is written twice by this run (two "
                                             "outputs with one name)"),
          "lock: a second open in the same process refused, said so", "%d '%s'", s, e.msg);
    s = sf_lock_take(&b, cs, &e, dir, "other.xml", "other.xml");
    check(s == SF_OK, "lock: another output's lock is its own", "%d %s", s, e.msg);
    sf_lock_release(&b, cs);
    /* A child process: the same. */
    pid_t pid = fork();
    if (pid == 0) {
        /* The verdict by exec: the child owns copies of the parent's
         * blocks (lock a), which it must not release (that would remove
         * the parent's lock file) and a leak checker would count. */
        sf_lock c = SF_LOCK_INIT;
        int busy = sf_lock_take(&c, cs, &e, dir, "feed.xml", "x") == SF_ERR_BUSY;
        execl(busy ? "/bin/true" : "/bin/false", "verdict", (char *)NULL);
        _exit(2);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    check(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "lock: refused in another process", "status %d",
          ws);
    sf_lock_release(&a, cs);
    sf_lock_release(&a, cs); /* idempotent */
    check(!exists(".feed.xml.sqlfeed.lock") && entries() == 0, "lock: released, file removed",
          "%d entries", entries());
    s = sf_lock_take(&b, cs, &e, dir, "feed.xml", "feed.xml");
    check(s == SF_OK, "lock: taken again after release", "%d %s", s, e.msg);
    sf_lock_release(&b, cs);
    /* A holder killed (SIGKILL): the kernel drops its lock; the file stays
     * and the next run takes it. */
    pid = fork();
    if (pid == 0) {
        sf_lock c = SF_LOCK_INIT;
        if (sf_lock_take(&c, cs, &e, dir, "feed.xml", "x") == SF_OK)
            kill(getpid(), SIGKILL);
        _exit(1);
    }
    waitpid(pid, &ws, 0);
    s = sf_lock_take(&b, cs, &e, dir, "feed.xml", "feed.xml");
    check(WIFSIGNALED(ws) && s == SF_OK, "lock: a killed holder's lock is free", "%d %s", s,
          e.msg);
    sf_lock_release(&b, cs);
    clean();

    /* Stale temporary files: exactly the shape, regular files, this output. */
    put(".feed.xml.sqlfeed-0123abcd", "stale");
    put(".feed.xml.sqlfeed-deadbeef", "stale");
    put(".feed.xml.sqlfeed-DEADBEEF", "not ours: upper case");
    put(".feed.xml.sqlfeed-0123abc", "not ours: 7 digits");
    put(".feed.xml.sqlfeed-0123abcde", "not ours: 9 digits");
    put(".feed.xml.gz.sqlfeed-0123abcd", "another output's");
    put(".feed.xm.sqlfeed-0123abcd", "another output's");
    put("feed.xml.sqlfeed-0123abcd", "not hidden");
    put(".feed.xml.sqlfeed-11112222", "this run's own");
    put(".feed.xml.sqlfeed.state", "the state record");
    put("feed.xml", "the feed");
    char path[4096];
    snprintf(path, sizeof path, "%s/.feed.xml.sqlfeed-aaaabbbb", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/.feed.xml.sqlfeed-ccccdddd", dir);
    if (symlink("feed.xml", path) != 0)
        perror("symlink");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    size_t n = sf_stale_temps_remove(dfd, "feed.xml", NULL, ".feed.xml.sqlfeed-11112222");
    check(n == 2 && !exists(".feed.xml.sqlfeed-0123abcd") && !exists(".feed.xml.sqlfeed-deadbeef") &&
              entries() == 11,
          "stale: the two leftovers removed, nothing else", "%zu removed, %d left", n,
          entries());
    clean();
    /* A name cut to fit NAME_MAX: its temporary files are recognised by the
     * cut name, as file.c makes them. */
    char name[300], tmp[300];
    memset(name, 'x', 240);
    strcpy(name + 240, "\xc3\xa9\xc3\xa9.xml"); /* é é: a cut falls inside one */
    size_t keep = sf_side_keep(name, SF_TEMP_EXTRA, 255);
    check(keep <= 237 && ((unsigned char)name[keep] & 0xc0) != 0x80, "stale: cut at a boundary",
          "keep %zu", keep);
    snprintf(tmp, sizeof tmp, ".%.*s.sqlfeed-0000ffff", (int)keep, name);
    put(tmp, "stale");
    n = sf_stale_temps_remove(dfd, name, NULL, NULL);
    check(n == 1 && !exists(tmp), "stale: a cut name's leftover removed", "%zu", n);
    /* Parts: every name the pattern makes, and cut ones. */
    sf_pattern p;
    if (sf_pattern_parse(&p, cs, &e, "part-%r-%03d.xml") == SF_OK) {
        put(".part-0a0a0a0a-001.xml.sqlfeed-12345678", "stale part temp");
        put(".part-0a0a0a0a-1234.xml.sqlfeed-12345678", "stale part temp");
        put(".part-0a0a0a0a-01.xml.sqlfeed-12345678", "not of the pattern");
        put("part-0a0a0a0a-001.xml", "a published part");
        n = sf_stale_temps_remove(dfd, NULL, &p, NULL);
        check(n == 2 && entries() == 2, "stale: part temporaries removed, nothing else",
              "%zu removed, %d left", n, entries());
        sf_pattern_free(&p, cs);
    }
    clean();
    char lp[300];
    snprintf(lp, sizeof lp, "%.*s-%%d.xml", 230, name);
    if (sf_pattern_parse(&p, cs, &e, lp) == SF_OK) {
        char full[300];
        sf_pattern_expand(&p, NULL, 12345, full, sizeof full);
        keep = sf_side_keep(full, SF_TEMP_EXTRA, 255);
        snprintf(tmp, sizeof tmp, ".%.*s.sqlfeed-abcdef01", (int)keep, full);
        put(tmp, "stale cut part");
        n = sf_stale_temps_remove(dfd, NULL, &p, NULL);
        check(n == 1 && entries() == 0, "stale: a cut part name's leftover removed", "%zu", n);
        sf_pattern_free(&p, cs);
    }
    close(dfd);
    clean();
}

/* ---- run tags and earlier runs ----------------------------------------- */

static void test_tags(sf_census *cs)
{
    sf_errbuf e;
    sf_pattern p;
    if (sf_pattern_parse(&p, cs, &e, "s-%r-%d.xml") != SF_OK)
        return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    char tag[9];
    int ok = 1;
    for (int i = 0; i < 200 && ok; i++)
        ok = sf_set_choose_tag(&p, dfd, "00000000", tag) == 0 && sf_is_tag8(tag, 8) &&
             strcmp(tag, "00000000");
    check(ok, "tag: 8 lowercase hex, never the previous run's", "'%s'", tag);
    put("s-aaaaaaaa-1.xml", "old");
    put("s-aaaaaaaa-2.xml", "old");
    put("s-bbbbbbbb-1.xml", "new");
    put("s-bbbbbbbb-2.xml", "new");
    put("s-bbbbbbbb-02.xml", "not one of the new set's spellings");
    put("s-bbbbbbbb-3.xml", "beyond the new set");
    put("s-aaaaaaaa-1.xml.bak", "not of the pattern");
    put("other.xml", "not of the pattern");
    char path[4096];
    snprintf(path, sizeof path, "%s/s-cccccccc-1.xml", dir);
    mkdir(path, 0755);
    int err = 0;
    /* The previous record lists a-1, a-2, the new set's b-1, a spelling
     * not the new set's, the directory, and names not of the pattern. */
    static const char listed[] = "s-aaaaaaaa-1.xml\0s-aaaaaaaa-2.xml\0s-bbbbbbbb-1.xml\0"
                                 "s-bbbbbbbb-02.xml\0s-cccccccc-1.xml\0other.xml\0"
                                 "../s-aaaaaaaa-9.xml\0s-dddddddd-1.xml\0";
    size_t n = sf_set_remove_stale(dfd, &p, listed, 8, "bbbbbbbb", 2, &err);
    check(n == 3 && !exists("s-aaaaaaaa-1.xml") && !exists("s-aaaaaaaa-2.xml") &&
              !exists("s-bbbbbbbb-02.xml") && exists("s-bbbbbbbb-1.xml") &&
              exists("s-bbbbbbbb-2.xml") && exists("s-bbbbbbbb-3.xml") &&
              exists("s-aaaaaaaa-1.xml.bak") && exists("other.xml") &&
              exists("s-cccccccc-1.xml") && entries() == 6 && err == 0,
          "earlier runs: the parts the record lists removed; unlisted names, the new set, "
          "directories and other names kept",
          "%zu removed, %d left, err %d", n, entries(), err);
    clean();
    /* A name of the pattern the record does not list is never removed. */
    put("s-aaaaaaaa-1.xml", "a user's file");
    n = sf_set_remove_stale(dfd, &p, "", 0, "bbbbbbbb", 2, &err);
    check(n == 0 && exists("s-aaaaaaaa-1.xml"), "earlier runs: nothing listed, nothing removed",
          "%zu removed", n);
    clean();
    sf_pattern_free(&p, cs);
    close(dfd);
    clean();
}


/* ---- parts and records through the output API -------------------------- */

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The uncompressed text of a gzip file (one member or more), or NULL. */
static char *gunzip(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return NULL;
    static char buf[1 << 16];
    int n = gzread(g, buf, sizeof buf - 1);
    int err = 0;
    gzerror(g, &err);
    gzclose(g);
    if (n < 0 || err != Z_OK)
        return NULL;
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* A set of many parts holds what one part does: a finished part keeps its
 * file sink only (its writer thread's buffers and gzip's blocks, ~4 MiB,
 * are freed when it ends). 30 parts of 300 KiB, each two gzip blocks, so
 * the workers run in every part. */
static void test_parts_memory(void)
{
    sf_census *cs = sf_census_create();
    sf_output *o = sf_output_create(cs);
    char pattern[4096], row[1000];
    snprintf(pattern, sizeof pattern, "%s/m-%%03d.xml.gz", dir);
    sf_status st = sf_output_set_option(o, "split_bytes", "300K");
    st = st ? st : sf_output_open_parts(o, pattern);
    uint64_t live2 = 0, live30 = 0, peak = 0;
    for (int i = 0; st == SF_OK && sf_output_part_count(o) <= 30; i++) {
        int n = snprintf(row, sizeof row, "<row n=\"%d\">%0*d</row>\n", i, 900, i * 7919);
        if (sf_output_split_due(o, (uint64_t)n, 0)) {
            if (sf_output_part_count(o) == 2)
                live2 = sf_census_live_bytes(cs);
            if (sf_output_part_count(o) == 30)
                live30 = sf_census_live_bytes(cs);
            if ((st = sf_output_next_part(o)) != SF_OK)
                break;
        }
        if (sf_census_live_bytes(cs) > peak)
            peak = sf_census_live_bytes(cs);
        if (st == SF_OK && (st = sf_output_write(o, row, (size_t)n)) == SF_OK)
            sf_output_count_row(o);
    }
    if (st == SF_OK)
        st = sf_output_commit(o);
    check(st == SF_OK && live2 > 0 && live30 > 0 && live30 < live2 + 28 * (16u << 10),
          "parts: 30 gzip parts hold what 2 do (a finished part keeps its file sink only)",
          "status %d: %llu bytes live at part 2, %llu at part 30, peak %llu: %s", (int)st,
          (unsigned long long)live2, (unsigned long long)live30, (unsigned long long)peak,
          sf_output_errmsg(o));
    sf_output_free(o);
    check(sf_census_live_bytes(cs) == 0, "parts: nothing live after free", "%llu",
          (unsigned long long)sf_census_live_bytes(cs));
    sf_census_free(cs);
}

static void test_parts(void)
{
    sf_census *cs = sf_census_create();
    sf_output *o = sf_output_create(cs);
    char pattern[4096], buf[128];
    snprintf(pattern, sizeof pattern, "%s/g-%%02d.xml.gz", dir);
    const char *head = "<part>\n", *tail = "</part>\n";
    sf_status st = sf_output_set_option(o, "split_bytes", "100");
    st = st ? st : sf_output_set_option(o, "writer", "inline");
    st = st ? st : sf_output_open_parts(o, pattern);
    check(st == SF_OK && sf_output_is_split(o) && sf_output_lock_path(o),
          "parts: opened, split, locked", "%d %s", st, sf_output_errmsg(o));
    if (st != SF_OK) {
        sf_output_free(o);
        sf_census_free(cs);
        return;
    }
    check(!sf_output_split_due(o, 1000, 1000), "parts: never due before a part's first row",
          "due");
    sf_output_write(o, head, strlen(head));
    int due_ok = 1;
    for (int i = 1; i <= 20; i++) {
        int n = snprintf(buf, sizeof buf, "<row>%d</row>\n", i);
        uint64_t part_bytes = sf_output_part_bytes(o, sf_output_part_count(o) - 1);
        int due = sf_output_split_due(o, (uint64_t)n, strlen(tail));
        /* Due exactly when the row and the tail would pass 100 bytes. */
        if (due != (sf_output_part_rows(o, sf_output_part_count(o) - 1) > 0 &&
                    part_bytes + (uint64_t)n + strlen(tail) > 100))
            due_ok = 0;
        if (due) {
            sf_output_write(o, tail, strlen(tail));
            if (sf_output_next_part(o) != SF_OK)
                break;
            sf_output_write(o, head, strlen(head));
        }
        sf_output_write(o, buf, (size_t)n);
        sf_output_count_row(o);
    }
    sf_output_write(o, tail, strlen(tail));
    check(due_ok, "parts: split due by bytes, head and tail counted", "wrong decision");
    st = sf_output_commit(o);
    size_t parts = sf_output_part_count(o);
    uint64_t rows = 0, bytes = 0, out = 0;
    int whole = 1;
    for (size_t i = 0; i < parts; i++) {
        const char *p = sf_output_part_path(o, i);
        size_t len = 0;
        char *text = p ? gunzip(p, &len) : NULL;
        int nrows = 0;
        for (char *q = text; q && (q = strstr(q, "<row>")); q++)
            nrows++;
        if (!text || strncmp(text, head, strlen(head)) ||
            strcmp(text + len - strlen(tail), tail) || len != sf_output_part_bytes(o, i) ||
            len > 100 || (uint64_t)nrows != sf_output_part_rows(o, i))
            whole = 0;
        rows += sf_output_part_rows(o, i);
        bytes += sf_output_part_bytes(o, i);
        out += p ? file_size(p) : 0;
    }
    snprintf(buf, sizeof buf, "%s/g-01.xml.gz", dir);
    check(st == SF_OK && parts > 3 && !strcmp(sf_output_part_path(o, 0), buf),
          "parts: published, several, named from the pattern", "%d %zu %s", st, parts,
          sf_output_errmsg(o));
    check(whole && rows == 20 && bytes == sf_output_bytes(o) && out == sf_output_bytes_out(o),
          "parts: each a complete gzip document of at most 100 bytes; rows, bytes, bytes out "
          "add up",
          "whole %d rows %llu bytes %llu/%llu out %llu/%llu", whole, (unsigned long long)rows,
          (unsigned long long)bytes, (unsigned long long)sf_output_bytes(o),
          (unsigned long long)out, (unsigned long long)sf_output_bytes_out(o));
    sf_output_free(o);
    check(!exists(".g-%02d.xml.gz.sqlfeed.lock"), "parts: lock released on free", "still there");

    /* The record: the previous run's rows, for --max-drop. */
    o = sf_output_create(cs);
    uint64_t prev = 0;
    sf_status st2;
    st = sf_output_open_parts(o, pattern);
    check(st == SF_OK && sf_output_previous_rows(o, &prev) == 1 && prev == 20,
          "record: a set's previous rows", "%d %llu", st, (unsigned long long)prev);
    sf_output_free(o); /* never published: the parts of the run stay */
    check(exists("g-01.xml.gz") && exists(".g-%02d.xml.gz.sqlfeed.state") && entries() == (int)parts + 1,
          "parts: a run freed unpublished leaves the published set and nothing else",
          "%d entries", entries());
    clean();
    char path[4096];
    snprintf(path, sizeof path, "%s/one.xml", dir);
    o = sf_output_create(cs);
    st = sf_output_open_file(o, path);
    check(st == SF_OK && sf_output_previous_rows(o, &prev) == 0, "record: none before a first run",
          "%d", st);
    sf_output_write(o, "<a/>\n", 5);
    sf_output_commit(o);
    sf_output_free(o);
    check(!exists(".one.xml.sqlfeed.state"), "record: none for a file that counted no rows",
          "written");
    for (int run = 0; run < 2; run++) {
        o = sf_output_create(cs);
        sf_output_open_file(o, path);
        if (run == 0)
            for (int i = 0; i < 3; i++)
                sf_output_count_row(o);
        else
            sf_output_keep_state(o); /* a feed with no rows */
        sf_output_write(o, "<a/>\n", 5);
        sf_output_commit(o);
        sf_output_free(o);
    }
    o = sf_output_create(cs);
    sf_output_open_file(o, path);
    int have = sf_output_previous_rows(o, &prev);
    sf_output_free(o);
    check(have == 1 && prev == 0, "record: an empty feed is recorded (keep_state)", "%d %llu",
          have, (unsigned long long)prev);
    /* Our temporary file removed before we held the lock: the output
     * starts again under the lock, and publishes. */
    snprintf(path, sizeof path, "%s/race.xml", dir);
    o = sf_output_create(cs);
    race_all = 1;
    st = sf_output_open_file(o, path);
    race_all = 0;
    sf_output_write(o, "<race/>\n", 8);
    st2 = st == SF_OK ? sf_output_commit(o) : st;
    check(st == SF_OK && st2 == SF_OK && exists("race.xml") && race_hit == 1,
          "lock: a temporary file removed before the lock was taken: opened again, published",
          "%d %d %s (removed %d)", st, st2, sf_output_errmsg(o), race_hit);
    sf_output_free(o);
    clean();
    /* A name of the pattern that leads to a device: refused, not written. */
    clean();
    snprintf(path, sizeof path, "%s/f-02.xml", dir);
    if (symlink("/dev/null", path) != 0)
        perror("symlink");
    o = sf_output_create(cs);
    snprintf(path, sizeof path, "%s/f-%%02d.xml", dir);
    sf_output_set_option(o, "split_rows", "1");
    st = sf_output_open_parts(o, path);
    sf_output_write(o, "<a/>", 4);
    sf_output_count_row(o);
    st2 = sf_output_split_due(o, 4, 0) ? sf_output_next_part(o) : SF_OK;
    check(st == SF_OK && st2 == SF_ERR_OUTPUT && strstr(sf_output_errmsg(o), "not a regular file"),
          "parts: a part name leading to a device refused", "%d %d %s", st, st2,
          sf_output_errmsg(o));
    sf_output_free(o);
    check(entries() == 1, "parts: ... and nothing left but the link", "%d entries", entries());
    clean();
    /* Bad patterns and kernel directories refused at open, leaving nothing. */
    o = sf_output_create(cs);
    snprintf(path, sizeof path, "%s/bad-%%x.xml", dir);
    st = sf_output_open_parts(o, path);
    sf_output_free(o);
    o = sf_output_create(cs);
    st2 = sf_output_open_parts(o, "/proc/self/p-%d.xml");
    check(st == SF_ERR_ARG && st2 == SF_ERR_OUTPUT && strstr(sf_output_errmsg(o), "will not"),
          "parts: a bad pattern, a kernel directory refused", "%d %d %s", st, st2,
          sf_output_errmsg(o));
    sf_output_free(o);
    clean();
    check(sf_census_live_bytes(cs) == 0, "parts: nothing left allocated", "%llu",
          (unsigned long long)sf_census_live_bytes(cs));
    sf_census_free(cs);
}

/* ---- publication, driven as the render drives it --------------------------
 * set_test --publish DIR ROWS SPLIT: ROWS rows of <row>i</row> into parts of
 * SPLIT rows (DIR/p-%r-%03d.xml), then an index DIR/index.xml naming each
 * part with its rows, published as sf_render_commit publishes a set:
 * finish parts, finish index, publish parts, publish index, settle. Exit 0,
 * or 1 with the message on stderr. Run by tests/set_test.sh under the
 * fault injection of tests/inject.c. */
static int fail_with(const char *what, sf_output *o)
{
    fprintf(stderr, "set_test: %s: %s\n", what, sf_output_errmsg(o));
    return 1;
}

static int publish_mode(const char *d, uint64_t rows, const char *split, int indexed)
{
    sf_census *cs = sf_census_create();
    sf_output *parts = sf_output_create(cs), *index = sf_output_create(cs);
    char pattern[4096], ipath[4096], buf[256];
    snprintf(pattern, sizeof pattern, indexed ? "%s/p-%%r-%%03d.xml" : "%s/p-%%03d.xml", d);
    snprintf(ipath, sizeof ipath, "%s/index.xml", d);
    int rc = 0;
    if (sf_output_set_option(parts, "split_rows", split) != SF_OK ||
        sf_output_set_option(parts, "writer", "inline") != SF_OK)
        return fail_with("option", parts);
    if (sf_output_open_parts(parts, pattern) != SF_OK)
        return fail_with("open parts", parts);
    if (indexed) {
        /* No sf_output_set_indexed(): a pattern with %r is indexed by
         * default, the case a caller that forgets gets. */
        if (sf_output_open_file(index, ipath) != SF_OK)
            return fail_with("open index", index);
    }
    const char *head = "<part>\n", *tail = "</part>\n";
    sf_output_write(parts, head, strlen(head));
    for (uint64_t i = 1; i <= rows; i++) {
        int n = snprintf(buf, sizeof buf, "<row>%llu</row>\n", (unsigned long long)i);
        if (sf_output_split_due(parts, (uint64_t)n, strlen(tail))) {
            if (sf_output_write(parts, tail, strlen(tail)) != SF_OK ||
                sf_output_next_part(parts) != SF_OK ||
                sf_output_write(parts, head, strlen(head)) != SF_OK)
                return fail_with("next part", parts);
        }
        if (sf_output_write(parts, buf, (size_t)n) != SF_OK)
            return fail_with("write", parts);
        sf_output_count_row(parts);
    }
    if (sf_output_write(parts, tail, strlen(tail)) != SF_OK || sf_output_finish(parts) != SF_OK)
        return fail_with("finish parts", parts);
    if (indexed) {
        sf_output_write(index, "<index>\n", 8);
        for (size_t i = 0; i < sf_output_part_count(parts); i++) {
            const char *p = sf_output_part_path(parts, i);
            const char *slash = strrchr(p, '/');
            int n = snprintf(buf, sizeof buf, "<part name=\"%s\" rows=\"%llu\"/>\n",
                             slash ? slash + 1 : p,
                             (unsigned long long)sf_output_part_rows(parts, i));
            sf_output_write(index, buf, (size_t)n);
            sf_output_count_row(index);
        }
        sf_output_write(index, "</index>\n", 9);
        if (sf_output_finish(index) != SF_OK)
            return fail_with("finish index", index);
    }
    if (sf_output_publish(parts) != SF_OK)
        rc = fail_with("publish parts", parts);
    else if (indexed && sf_output_publish(index) != SF_OK)
        rc = fail_with("publish index", index);
    else if (indexed && sf_output_settle(parts) != SF_OK)
        rc = fail_with("settle", parts);
    sf_output_free(parts);
    sf_output_free(index);
    sf_census_free(cs);
    return rc;
}

/* --hold PATH MARK SECONDS: opens PATH, writes "held feed", creates MARK,
 * waits, commits. --open PATH: opens, says "status N[: message]", commits
 * "open feed". --kill PATH: opens, writes, dies by SIGKILL. */
static int hold_mode(const char *mode, const char *path, const char *mark, int seconds)
{
    sf_census *cs = sf_census_create();
    sf_output *o = sf_output_create(cs);
    sf_status st = sf_output_open_file(o, path);
    if (!strcmp(mode, "--open")) {
        if (st == SF_OK)
            printf("status 0\n");
        else
            printf("status %d: %s\n", st, sf_output_errmsg(o));
    }
    if (st != SF_OK) {
        sf_output_free(o);
        sf_census_free(cs);
        return 1;
    }
    const char *text = !strcmp(mode, "--open") ? "open feed\n" : "held feed\n";
    sf_output_write(o, text, strlen(text));
    if (!strcmp(mode, "--kill")) {
        sf_output_finish(o); /* the temporary file complete, never renamed */
        kill(getpid(), SIGKILL);
    }
    if (mark) {
        FILE *f = fopen(mark, "w");
        if (f) {
            const char *lock = sf_output_lock_path(o);
            fprintf(f, "%s\n", lock ? lock : "(no lock)");
            fclose(f);
        }
        sleep((unsigned)seconds);
    }
    st = sf_output_commit(o);
    if (st != SF_OK)
        fprintf(stderr, "set_test: commit: %s\n", sf_output_errmsg(o));
    sf_output_free(o);
    sf_census_free(cs);
    return st == SF_OK ? 0 : 1;
}

/* set_test --render DIR ROWS SPLIT: the same set through the feed loop
 * (sf_render_add_output + sf_render_add_index + execute + commit, then
 * sf_output_settle), ROWS rows from SQLite, SPLIT rows a part. */
static int render_mode(const char *d, const char *rows, const char *split)
{
    sf_census *cs = sf_census_create();
    sf_source *src = sf_source_create(cs);
    sf_render *r = sf_render_create(cs);
    sf_template *tp = sf_template_create(cs, SF_TEMPLATE_XML);
    sf_template *ti = sf_template_create(cs, SF_TEMPLATE_XML);
    sf_output *parts = sf_output_create(cs), *index = sf_output_create(cs);
    static const char part_tpl[] = "<part>\n{{#rows}}<row>{{v}}</row>\n{{/rows}}</part>\n";
    static const char index_tpl[] =
        "<index>\n{{#rows}}<part name=\"{{name}}\" rows=\"{{row_count}}\"/>\n{{/rows}}</index>\n";
    char sql[256], pattern[4096], ipath[4096];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE c(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM c LIMIT %s) "
             "SELECT v FROM c",
             rows);
    snprintf(pattern, sizeof pattern, "%s/p-%%r-%%03d.xml", d);
    snprintf(ipath, sizeof ipath, "%s/index.xml", d);
    const char *what = "source";
    sf_status st = sf_source_open(src, ":memory:");
    st = st ? st : sf_source_prepare(src, sql);
    if (st == SF_OK) {
        what = "template";
        st = sf_template_load_string(tp, "p.mustache", part_tpl, strlen(part_tpl), NULL, NULL);
        st = st ? st
                : sf_template_load_string(ti, "i.mustache", index_tpl, strlen(index_tpl), NULL,
                                          NULL);
    }
    if (st == SF_OK) {
        what = "open";
        st = sf_output_set_option(parts, "split_rows", split);
        st = st ? st : sf_output_open_parts(parts, pattern);
        st = st ? st : sf_output_open_file(index, ipath);
    }
    if (st == SF_OK) {
        what = "render";
        st = sf_render_add_output(r, tp, parts);
        st = st ? st : sf_render_add_index(r, parts, ti, index, "https://x.test/", NULL);
        st = st ? st : sf_render_execute(r, src);
        st = st ? st : sf_render_commit(r);
    }
    if (st == SF_OK) {
        what = "settle";
        st = sf_output_settle(parts);
    }
    if (st != SF_OK)
        fprintf(stderr, "set_test: %s: %s | %s | %s | %s\n", what, sf_render_errmsg(r),
                sf_output_errmsg(parts), sf_output_errmsg(index), sf_source_errmsg(src));
    sf_render_free(r);
    sf_output_free(parts);
    sf_output_free(index);
    sf_template_free(tp);
    sf_template_free(ti);
    sf_source_free(src);
    sf_census_free(cs);
    return st == SF_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--render"))
        return render_mode(argv[2], argv[3], argv[4]);
    if (argc == 5 && !strcmp(argv[1], "--publish"))
        return publish_mode(argv[2], strtoull(argv[3], NULL, 10), argv[4], 1);
    if (argc == 6 && !strcmp(argv[1], "--publish"))
        return publish_mode(argv[2], strtoull(argv[3], NULL, 10), argv[4], atoi(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "--hold"))
        return hold_mode(argv[1], argv[2], argv[3], atoi(argv[4]));
    if (argc == 3 && (!strcmp(argv[1], "--open") || !strcmp(argv[1], "--kill")))
        return hold_mode(argv[1], argv[2], NULL, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: set_test DIR | --publish DIR ROWS SPLIT [INDEXED] | "
                        "--hold PATH MARK SECONDS | --open PATH | --kill PATH\n");
        return 2;
    }
    dir = argv[1];
    sf_census *cs = sf_census_create();
    test_pattern(cs);
    test_state(cs);
    test_lock(cs);
    test_tags(cs);
    test_parts();
    test_parts_memory();
    uint64_t live = sf_census_live_bytes(cs);
    check(live == 0, "census: nothing left allocated", "%llu bytes live",
          (unsigned long long)live);
    sf_census_free(cs);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
