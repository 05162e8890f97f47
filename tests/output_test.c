/* output_test.c DIR: the file output's promises, through the public API
 * only, in a scratch directory DIR: what sf_output_atomic() and
 * sf_output_temp_path() say before and after a commit or an abort; a cancel
 * before the rename publishes nothing; a name longer than NAME_MAX refused
 * at open; a regular-file descriptor truncated where the document ends
 * (kept with O_APPEND); kernel directories; the files a template read.
 * Prints "PASS: name" / "FAIL: name: detail"; exit 1 if anything failed. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlfeed.h"

static int failures;
static const char *dir;

static void check(int ok, const char *name, const char *detail)
{
    if (ok)
        printf("PASS: %s\n", name);
    else {
        printf("FAIL: %s: %s\n", name, detail);
        failures++;
    }
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int temp_exists(const char *tmp)
{
    struct stat st;
    return tmp && stat(tmp, &st) == 0;
}

static void test_atomic_flag(void)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/a.xml", dir);
    put(path, "previous");
    sf_output *o = sf_output_create(NULL);
    check(sf_output_atomic(o) == 0, "atomic: 0 before open", "not 0");
    sf_status st = sf_output_open_file(o, path);
    check(st == SF_OK && sf_output_atomic(o) == 1 && sf_output_temp_path(o),
          "atomic: 1 with a temporary file after open_file", sf_output_errmsg(o));
    snprintf(tmp, sizeof tmp, "%s", sf_output_temp_path(o) ? sf_output_temp_path(o) : "");
    sf_output_write(o, "new", 3);
    st = sf_output_commit(o);
    check(st == SF_OK && sf_output_published(o), "commit publishes", sf_output_errmsg(o));
    check(sf_output_atomic(o) == 1, "atomic: still 1 after a successful commit",
          "0 once the temporary file is gone");
    check(sf_output_temp_path(o) == NULL && !temp_exists(tmp),
          "temp_path: NULL after commit, the file renamed", tmp);
    char *got = slurp(path);
    check(got && !strcmp(got, "new"), "commit: the new document in place", got ? got : "?");
    sf_output_free(o);

    o = sf_output_create(NULL);
    put(path, "previous");
    sf_output_open_file(o, path);
    snprintf(tmp, sizeof tmp, "%s", sf_output_temp_path(o) ? sf_output_temp_path(o) : "");
    sf_output_abort(o);
    check(sf_output_atomic(o) == 1 && !temp_exists(tmp) && !strcmp(slurp(path), "previous"),
          "abort: atomic still 1, temporary file removed, previous kept", tmp);
    sf_output_free(o);

    o = sf_output_create(NULL);
    int fd = open("/dev/null", O_WRONLY);
    sf_output_open_fd(o, fd, "null");
    check(sf_output_atomic(o) == 0 && sf_output_temp_path(o) == NULL, "atomic: 0 for a descriptor",
          "not 0");
    sf_output_commit(o);
    check(sf_output_atomic(o) == 0, "atomic: 0 for a descriptor after commit", "not 0");
    sf_output_free(o);
    close(fd);
}

static void test_cancel(void)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/c.xml", dir);
    put(path, "previous");
    sf_output *o = sf_output_create(NULL);
    sf_output_open_file(o, path);
    snprintf(tmp, sizeof tmp, "%s", sf_output_temp_path(o) ? sf_output_temp_path(o) : "");
    sf_output_write(o, "new", 3);
    sf_output_cancel(o);
    sf_status st = sf_output_commit(o);
    check(st == SF_ERR_CANCELLED && !sf_output_published(o), "cancel before commit: "
          "SF_ERR_CANCELLED, not published", sf_output_errmsg(o));
    check(!strcmp(slurp(path), "previous") && !temp_exists(tmp),
          "cancel before commit: previous kept, temporary file removed", tmp);
    sf_output_free(o);
}

static void test_name_max(void)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/", dir);
    memset(path + n, 'n', 256);
    path[n + 256] = '\0';
    sf_output *o = sf_output_create(NULL);
    sf_status st = sf_output_open_file(o, path);
    check(st == SF_ERR_OUTPUT && strstr(sf_output_errmsg(o), "File name too long") &&
              sf_output_temp_path(o) == NULL,
          "a 256-byte name: refused at open, no temporary file", sf_output_errmsg(o));
    sf_output_free(o);
    path[n + 255] = '\0';
    o = sf_output_create(NULL);
    st = sf_output_open_file(o, path);
    check(st == SF_OK && sf_output_commit(o) == SF_OK, "a 255-byte name: published",
          sf_output_errmsg(o));
    sf_output_free(o);
    unlink(path);
}

static void test_truncate(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/t.xml", dir);
    put(path, "an old document, much longer than the new one\n");
    int fd = open(path, O_RDWR); /* 1<>t.xml: no O_TRUNC */
    sf_output *o = sf_output_create(NULL);
    sf_output_open_fd(o, fd, "t.xml");
    sf_output_write(o, "new\n", 4);
    sf_status st = sf_output_commit(o);
    char *got = slurp(path);
    check(st == SF_OK && got && !strcmp(got, "new\n"),
          "a descriptor on a regular file without O_TRUNC: cut where the document ends",
          got ? got : "?");
    sf_output_free(o);
    close(fd);

    put(path, "kept\n");
    fd = open(path, O_WRONLY | O_APPEND); /* >>t.xml */
    o = sf_output_create(NULL);
    sf_output_open_fd(o, fd, "t.xml");
    sf_output_write(o, "new\n", 4);
    st = sf_output_commit(o);
    got = slurp(path);
    check(st == SF_OK && got && !strcmp(got, "kept\nnew\n"),
          "a descriptor with O_APPEND: what was there is kept", got ? got : "?");
    sf_output_free(o);
    close(fd);
}

static void test_kernel_dirs(void)
{
    check(sf_output_kernel_dir("/proc") && sf_output_kernel_dir("/proc/self") &&
              sf_output_kernel_dir("/sys") && sf_output_kernel_dir("/dev"),
          "kernel_dir: /proc, /proc/self, /sys, /dev", "one was 0");
    check(!sf_output_kernel_dir(dir) && !sf_output_kernel_dir("/nonexistent-dir"),
          "kernel_dir: a scratch directory and a missing one are not", "1");
    struct stat st;
    if (stat("/dev/shm", &st) == 0)
        check(sf_output_kernel_dir("/dev/shm"), "kernel_dir: /dev/shm (under /dev)", "0");
}

static void test_template_files(void)
{
    char main_path[4096], item[4096], other[4096];
    snprintf(main_path, sizeof main_path, "%s/main.mustache", dir);
    snprintf(item, sizeof item, "%s/item.mustache", dir);
    snprintf(other, sizeof other, "%s/other.mustache", dir);
    put(main_path, "<r>{{#rows}}{{>item}}\n  {{>item}}\n{{>other}}{{/rows}}</r>\n");
    put(item, "<v>{{v}}</v>");
    put(other, "<w/>");
    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
    sf_status st = sf_template_load_file(t, main_path);
    size_t n = sf_template_file_count(t);
    check(st == SF_OK && n == 3 && !strcmp(sf_template_file(t, 0), main_path) &&
              !strcmp(sf_template_file(t, 1), item) && !strcmp(sf_template_file(t, 2), other) &&
              sf_template_file(t, 3) == NULL,
          "template files: the template and each partial file once (one partial included "
          "twice, indented once)",
          st != SF_OK ? sf_template_errmsg(t) : "wrong list");
    sf_template_load_builtin(t, sf_builtin_template_name(0));
    check(sf_template_file_count(t) == 0, "template files: none for a built-in", "some");
    sf_template_free(t);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: output_test DIR\n");
        return 2;
    }
    dir = argv[1];
    test_atomic_flag();
    test_cancel();
    test_name_max();
    test_truncate();
    test_kernel_dirs();
    test_template_files();
    return failures ? 1 : 0;
}
