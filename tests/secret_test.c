/* secret_test.c: the passwords of --db strings, every form libpq and the
 * MySQL URL reader accept: masked in messages (sf_db_mask), overwritten in
 * argv (sf_db_hide_secrets), scrubbed from a client library's text
 * (sf_db_scrub), and bounded at every buffer size. Prints PASS/FAIL lines;
 * exit 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlfeed.h"
#include "source/sqltext.h"

static int failures;

static void check(int ok, const char *what, const char *db, const char *got)
{
    if (ok)
        printf("PASS: %s\n", what);
    else {
        printf("FAIL: %s: for [%s] got [%s]\n", what, db, got);
        failures++;
    }
}

/* Each: the --db string, its masked form, its argv form. */
static const struct {
    const char *name, *db, *masked, *hidden;
} cases[] = {
    {"URL user:password@", "postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db",
     "postgresql://u:xxxxxx@h:5432/db"},
    {"URL ?password= in the query", "postgresql://u@h/db?sslmode=disable&password=s3cret",
     "postgresql://u@h/db?sslmode=disable&password=***",
     "postgresql://u@h/db?sslmode=disable&password=xxxxxx"},
    {"URL ?password= first, then another key", "postgres://h/db?password=s3cret&application_name=a",
     "postgres://h/db?password=***&application_name=a",
     "postgres://h/db?password=xxxxxx&application_name=a"},
    {"URL percent-encoded key (pass%77ord)", "postgresql://h/db?pass%77ord=s3cret",
     "postgresql://h/db?pass%77ord=***", "postgresql://h/db?pass%77ord=xxxxxx"},
    {"URL ?sslpassword=", "postgresql://h/db?sslpassword=k3y", "postgresql://h/db?sslpassword=***",
     "postgresql://h/db?sslpassword=xxx"},
    {"URL password holding an unencoded '?'", "postgresql://u:pa?ss@h/db",
     "postgresql://u:***@h/db", "postgresql://u:xxxxx@h/db"},
    {"URL password holding an unencoded '#'", "postgresql://u:pa#ss@h/db",
     "postgresql://u:***@h/db", "postgresql://u:xxxxx@h/db"},
    {"URL percent-encoded password", "postgresql://u:p%40ss%2F@h/db", "postgresql://u:***@h/db",
     "postgresql://u:xxxxxxxxx@h/db"},
    {"URL password holding an unencoded '@' (last '@')", "mysql://u:pa@ss@h/db",
     "mysql://u:***@h/db", "mysql://u:xxxxx@h/db"},
    {"URL password holding an unencoded '/'", "postgresql://u:pa/ss@h/db",
     "postgresql://u:***@h/db", "postgresql://u:xxxxx@h/db"},
    {"MySQL URL with options", "mysql://root:s3cret@127.0.0.1:3306/db?socket=/tmp/my.sock",
     "mysql://root:***@127.0.0.1:3306/db?socket=/tmp/my.sock",
     "mysql://root:xxxxxx@127.0.0.1:3306/db?socket=/tmp/my.sock"},
    {"MariaDB URL with '?' in the password", "mariadb://u:p?w@h/db", "mariadb://u:***@h/db",
     "mariadb://u:xxx@h/db"},
    {"URL without a password", "postgresql://u@h:5432/db?sslmode=require",
     "postgresql://u@h:5432/db?sslmode=require", "postgresql://u@h:5432/db?sslmode=require"},
    {"conninfo bare", "host=h password=s3cret dbname=d", "host=h password=*** dbname=d",
     "host=h password=xxxxxx dbname=d"},
    {"conninfo spaces around '='", "host=h password = s3cret", "host=h password = ***",
     "host=h password = xxxxxx"},
    {"conninfo quoted with an escaped quote", "host=h password='x\\' y' user=u",
     "host=h password='***' user=u", "host=h password='xxxxx' user=u"},
    {"conninfo bare with an escaped blank", "password=a\\ b host=h", "password=*** host=h",
     "password=xxxx host=h"},
    {"conninfo sslpassword", "host=h sslpassword=k3y", "host=h sslpassword=***",
     "host=h sslpassword=xxx"},
    {"conninfo upper-case key", "host=h PASSWORD=s3cret", "host=h PASSWORD=***",
     "host=h PASSWORD=xxxxxx"},
    {"conninfo unterminated quote: from 'password' on", "host=h password='s3 cret",
     "host=h password***", "host=h passwordxxxxxxxxx"},
    {"conninfo missing '=': from 'password' on", "password=a b c", "password***",
     "passwordxxxxxx"},
    {"conninfo holding a URL with a password", "host=h dbname=postgresql://u:inner@h/d",
     "host=h dbname=postgresql://u:***@h/d", "host=h dbname=postgresql://u:xxxxx@h/d"},
    {"a SQLite path", "/var/lib/jobs.db", "/var/lib/jobs.db", "/var/lib/jobs.db"},
    {"a SQLite file: URI", "file:jobs.db?mode=ro", "file:jobs.db?mode=ro", "file:jobs.db?mode=ro"},
};

int main(void)
{
    char buf[512], what[200];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = sf_db_mask(cases[i].db, buf, sizeof buf);
        snprintf(what, sizeof what, "mask: %s", cases[i].name);
        check(!strcmp(buf, cases[i].masked) && n == strlen(buf), what, cases[i].db, buf);
        char *h = strdup(cases[i].db);
        sf_db_hide_secrets(h);
        snprintf(what, sizeof what, "argv: %s", cases[i].name);
        check(!strcmp(h, cases[i].hidden), what, cases[i].db, h);
        free(h);
    }

    /* Every buffer size: terminated inside, never a byte of the secret. */
    const char *db = "postgresql://sqlfeed:topsecret@127.0.0.1:5432/jobs?password=topsecret";
    int ok = 1;
    size_t full = sf_db_mask(db, NULL, 0);
    for (size_t n = 1; n <= full + 1; n++) {
        char *b = malloc(n);
        sf_db_mask(db, b, n);
        if (strlen(b) >= n || strstr(b, "tops") || strstr(b, "cret"))
            ok = 0;
        free(b);
    }
    check(ok, "mask: every buffer size terminates and shows no secret byte", db, "");

    /* The read past the output buffer of the old mask: a long conninfo
     * with "password=" at the truncation point (found by libFuzzer). */
    char longdb[5000];
    memset(longdb, 'a', sizeof longdb);
    memcpy(longdb, "host=", 5);
    memcpy(longdb + 500, " password=", 10);
    longdb[sizeof longdb - 1] = '\0';
    char small[505];
    sf_db_mask(longdb, small, sizeof small);
    check(strlen(small) == sizeof small - 1 && sf_db_mask(longdb, NULL, 0) == 513,
          "mask: a long conninfo truncated at password= (no read or write past it)",
          "(5000 bytes)", small);

    /* Scrubbing a client library's message. */
    const char *u = "postgresql://u@h/db?password=%zzs3cret";
    sf_db_scrub(u, "invalid percent-encoded token: \"%zzs3cret\"", buf, sizeof buf);
    check(!strstr(buf, "s3cret"), "scrub: libpq's percent-decoding error quoting the value", u, buf);
    sf_db_scrub(u, "unexpected character in URI: \"postgresql://u@h/db?password=%zzs3cret\"", buf,
                sizeof buf);
    check(!strstr(buf, "s3cret") && strstr(buf, "postgresql://u@h/db?password=***"),
          "scrub: libpq's URI error quoting the whole URI", u, buf);
    const char *m = "mysql://u:pa@ss@h/db";
    sf_db_scrub(m, "Unknown MySQL server host 'ss@h' (-2)", buf, sizeof buf);
    check(!strstr(buf, "ss@h"), "scrub: a quoted fragment reaching into the password", m, buf);
    sf_db_scrub("postgresql://u:pw@h:1/db", "connection to server at \"h\", port 1 failed: timeout expired",
                buf, sizeof buf);
    check(!strcmp(buf, "connection to server at \"h\", port 1 failed: timeout expired"),
          "scrub: leaves text alone that only shares letters with the password", "", buf);
    sf_db_scrub("host=h password=p%41ss", "password p%41ss and pAss", buf, sizeof buf);
    check(!strstr(buf, "p%41ss"), "scrub: conninfo secret as written", "", buf);
    check(sf_db_has_secret("postgresql://u:p%40ss@h/db", "p@ss") &&
              sf_db_has_secret("host=h password='x\\' y'", "x' y") &&
              !sf_db_has_secret("postgresql://u:pa@ss@h/db", "pa"),
          "has_secret: decoded values, and libpq's other reading of an unencoded '@'", "", "");
    /* libpq drops a bare value's trailing backslash (nothing follows to
     * escape): password=s3cr\ is "s3cr" to it, so to the comparison too. */
    check(sf_db_has_secret("host=h password=s3cr\\", "s3cr") &&
              sf_db_has_secret("host=h password=s3\\\\", "s3\\") &&
              !sf_db_has_secret("host=h password=s3cr\\", "s3cr\\"),
          "has_secret: a bare conninfo value's trailing backslash, dropped as libpq does", "", "");
    printf("%s\n", failures ? "secret_test: FAILED" : "secret_test: all passed");
    return failures ? 1 : 0;
}
