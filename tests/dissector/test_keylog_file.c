/*
 * test_keylog_file.c - the dissector's keylog file tracking
 * (dissector/keylog_file.c): keys appended later are picked up, a replaced or
 * rewritten file is read again, a line still being written is not lost, and
 * an unchanged file is not read again.  No Wireshark needed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keylog_file.h"

static int failures;

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                   \
            failures++;                                                                                 \
        }                                                                                               \
    } while (0)

/* The two lines of session n (client random and secrets made from n). */
static void session_lines(int n, char *out, size_t cap)
{
    char random[65], secret[65];
    for (int i = 0; i < 64; i++) {
        random[i] = "0123456789abcdef"[(n + i) % 16];
        secret[i] = "0123456789abcdef"[(3 * n + i) % 16];
    }
    random[64] = secret[64] = '\0';
    snprintf(out, cap, "VEIL_CLIENT_TRAFFIC_SECRET_0 %s %s\nVEIL_SERVER_TRAFFIC_SECRET_0 %s %s\n", random, secret,
             random, secret);
}

static void write_file(const char *path, const char *text, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    if (utimensat(AT_FDCWD, path, ts, 0) != 0) {
        perror("utimensat");
        exit(1);
    }
}

int main(void)
{
    char dir[] = "/tmp/veil-keylog-file.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char path[512], other[512], line[512];
    snprintf(path, sizeof(path), "%s/keys", dir);
    snprintf(other, sizeof(other), "%s/keys.new", dir);
    vd_keylog_file kf;

    /* No file configured, or not there yet: empty, no error. */
    CHECK(vd_keylog_file_open(&kf, NULL) == 0);
    CHECK(veil_keylog_count(kf.keys) == 0);
    vd_keylog_file_close(&kf);
    CHECK(vd_keylog_file_open(&kf, path) == 0);
    CHECK(veil_keylog_count(kf.keys) == 0 && kf.reads == 0);

    /* Created later: read at the next refresh. */
    session_lines(1, line, sizeof(line));
    write_file(path, "# veil keylog\n", "w");
    write_file(path, line, "a");
    set_mtime(path, 1000);
    vd_keylog_file_refresh(&kf);
    CHECK(veil_keylog_count(kf.keys) == 1);
    CHECK(kf.reads == 1);

    /* Unchanged: not read again. */
    vd_keylog_file_refresh(&kf);
    CHECK(kf.reads == 1);

    /* Appended, the last line without its newline yet: parsed, and read again
       once it is complete; only the new bytes are read. */
    session_lines(2, line, sizeof(line));
    line[strlen(line) - 1] = '\0';
    write_file(path, line, "a");
    set_mtime(path, 1001);
    off_t before = kf.consumed;
    vd_keylog_file_refresh(&kf);
    CHECK(veil_keylog_count(kf.keys) == 2);
    CHECK(kf.reads == 2);
    CHECK(kf.consumed > before && kf.consumed < kf.size);
    write_file(path, "\n", "a");
    session_lines(3, line, sizeof(line));
    write_file(path, line, "a");
    set_mtime(path, 1002);
    vd_keylog_file_refresh(&kf);
    CHECK(veil_keylog_count(kf.keys) == 3);
    CHECK(kf.consumed == kf.size);
    CHECK(kf.malformed == 0);

    /* A malformed Veil line is counted, the rest still read. */
    write_file(path, "VEIL_CLIENT_TRAFFIC_SECRET_0 zz\nOTHER_LABEL 1 2\n", "a");
    set_mtime(path, 1003);
    vd_keylog_file_refresh(&kf);
    CHECK(kf.malformed == 1);
    CHECK(veil_keylog_count(kf.keys) == 3);

    /* Replaced by another file (rename): read whole; earlier keys are kept. */
    session_lines(4, line, sizeof(line));
    write_file(other, line, "w");
    CHECK(rename(other, path) == 0);
    unsigned reads = kf.reads;
    vd_keylog_file_refresh(&kf);
    CHECK(kf.reads == reads + 1);
    CHECK(veil_keylog_count(kf.keys) == 4);

    /* Rewritten in place with the same size and a new mtime: read again. */
    session_lines(5, line, sizeof(line));
    write_file(path, line, "w");
    set_mtime(path, 2000);
    vd_keylog_file_refresh(&kf);
    CHECK(veil_keylog_count(kf.keys) == 5);

    /* Truncated (overwritten with less): read again from the start. */
    write_file(path, "# emptied\n", "w");
    set_mtime(path, 3000);
    vd_keylog_file_refresh(&kf);
    CHECK(kf.consumed == kf.size);
    CHECK(veil_keylog_count(kf.keys) == 5);

    /* Removed: nothing changes, no error. */
    CHECK(unlink(path) == 0);
    vd_keylog_file_refresh(&kf);
    CHECK(veil_keylog_count(kf.keys) == 5);

    vd_keylog_file_close(&kf);
    rmdir(dir);
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok: keylog file tracking\n");
    return 0;
}
