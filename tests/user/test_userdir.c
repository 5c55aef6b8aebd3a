/*
 * test_userdir.c - the user directory (apps/common/userdir.h) and veil-user.
 *
 *   test_userdir PATH-TO-veil-user
 *
 * The library: names, add/replace/delete keeping the order, save and load
 * round trip with mode 0600, refusal of files others may access, of
 * malformed files, reload on change, and the lookup_user callback.
 * The program: a verifier it writes equals veil_user_verifier_make over the
 * same password and salt (so it really derives with libproto), the password
 * is nowhere in the file, and at a terminal (a pseudo-terminal here) it asks
 * twice with echo off and restores the terminal when interrupted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "userdir.h"
#include "veilapp.h"

static const char *tool; /* veil-user */
static char dir[256], path[320];

static int setup(void **st)
{
    (void)st;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/veil-userdir-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/users.json", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static char *read_all(const char *p)
{
    static char buf[65536];
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void make_verifier(veil_user_verifier *v, uint8_t seed, uint32_t iterations)
{
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < sizeof v->salt; i++)
        v->salt[i] = (uint8_t)(seed + i);
    for (size_t i = 0; i < 32; i++) {
        v->stored_key[i] = (uint8_t)(seed * 3 + i);
        v->server_key[i] = (uint8_t)(seed * 7 + i);
    }
    v->iterations = iterations;
}

/* ------------------------------------------------------------------------ */
/* The library                                                              */

static void test_names(void **st)
{
    (void)st;
    assert_true(vapp_user_name_valid("alice"));
    assert_true(vapp_user_name_valid("A.b_c-9"));
    assert_true(vapp_user_name_valid("x"));
    char n[80];
    memset(n, 'n', 64);
    n[64] = '\0';
    assert_true(vapp_user_name_valid(n));
    n[64] = 'n';
    n[65] = '\0';
    assert_false(vapp_user_name_valid(n));
    const char *bad[] = {"", "a b", "a/b", "a:b", "a\"b", "a\\b", "\xc3\xa9", "a\n", "a\tb", "a@b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(vapp_user_name_valid(bad[i]));
    assert_false(vapp_user_name_valid(NULL));

    char p[4096], err[VAPP_ERRLEN];
    setenv("HOME", "/home/someone", 1);
    assert_int_equal(vapp_userdir_default_path(p, sizeof p, err), 0);
    assert_string_equal(p, "/home/someone/.config/veil/users.json");
}

static void test_put_del_find(void **st)
{
    (void)st;
    vapp_userdir d;
    vapp_userdir_init(&d);
    char err[VAPP_ERRLEN];
    veil_user_verifier v;
    const char *names[] = {"mallory", "alice", "zed", "bob", "carol", "Bob", "a", "b.c", "b-c"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int replaced = -1;
        make_verifier(&v, (uint8_t)i, 4096 + (uint32_t)i);
        assert_int_equal(vapp_userdir_put(&d, names[i], &v, &replaced, err), 0);
        assert_int_equal(replaced, 0);
    }
    assert_int_equal(d.n, 9);
    for (size_t i = 1; i < d.n; i++)
        assert_true(strcmp(d.users[i - 1].name, d.users[i].name) < 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const vapp_user *u = vapp_userdir_find(&d, names[i]);
        assert_non_null(u);
        assert_int_equal(u->verifier.iterations, 4096 + i);
        veil_user_verifier got;
        assert_int_equal(vapp_userdir_lookup(&d, names[i], &got), 0);
        make_verifier(&v, (uint8_t)i, 4096 + (uint32_t)i);
        assert_memory_equal(&got, &v, sizeof v);
    }
    assert_null(vapp_userdir_find(&d, "nobody"));
    assert_null(vapp_userdir_find(&d, "ALICE"));
    veil_user_verifier untouched;
    memset(&untouched, 0x5a, sizeof untouched);
    assert_int_equal(vapp_userdir_lookup(&d, "nobody", &untouched), -1);

    /* Replace. */
    int replaced = 0;
    make_verifier(&v, 99, 5000);
    assert_int_equal(vapp_userdir_put(&d, "carol", &v, &replaced, err), 0);
    assert_int_equal(replaced, 1);
    assert_int_equal(d.n, 9);
    assert_int_equal(vapp_userdir_find(&d, "carol")->verifier.iterations, 5000);

    /* Refused puts. */
    assert_int_equal(vapp_userdir_put(&d, "bad name", &v, NULL, err), -1);
    assert_non_null(strstr(err, "invalid user name"));
    v.iterations = VEIL_SCRAM_MIN_ITERATIONS - 1;
    assert_int_equal(vapp_userdir_put(&d, "dave", &v, NULL, err), -1);
    assert_non_null(strstr(err, "iterations"));
    assert_int_equal(d.n, 9);

    /* Delete first, middle, last, missing. */
    assert_int_equal(vapp_userdir_del(&d, "Bob"), 0);
    assert_int_equal(vapp_userdir_del(&d, "zed"), 0);
    assert_int_equal(vapp_userdir_del(&d, "bob"), 0);
    assert_int_equal(vapp_userdir_del(&d, "bob"), -1);
    assert_int_equal(vapp_userdir_del(&d, "nobody"), -1);
    assert_int_equal(d.n, 6);
    assert_null(vapp_userdir_find(&d, "bob"));
    assert_non_null(vapp_userdir_find(&d, "mallory"));
    for (size_t i = 1; i < d.n; i++)
        assert_true(strcmp(d.users[i - 1].name, d.users[i].name) < 0);
    vapp_userdir_free(&d);
    assert_int_equal(d.n, 0);
    assert_null(vapp_userdir_find(&d, "alice"));
    assert_int_equal(vapp_userdir_del(&d, "alice"), -1);
}

static void test_save_load(void **st)
{
    (void)st;
    vapp_userdir d, e;
    vapp_userdir_init(&d);
    vapp_userdir_init(&e);
    char err[VAPP_ERRLEN];
    veil_user_verifier v;
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%02d", 49 - i);
        make_verifier(&v, (uint8_t)i, 4096 + (uint32_t)i * 1000);
        assert_int_equal(vapp_userdir_put(&d, name, &v, NULL, err), 0);
    }
    /* Into a directory that does not exist yet. */
    char sub[400];
    snprintf(sub, sizeof sub, "%s/a/b/users.json", dir);
    assert_int_equal(vapp_userdir_save(&d, sub, err), 0);
    struct stat sb;
    assert_int_equal(stat(sub, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    assert_int_equal(stat(sub, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);

    assert_int_equal(vapp_userdir_save(&d, path, err), 0);
    assert_int_equal(vapp_userdir_load(&e, path, err), 0);
    assert_int_equal(e.n, d.n);
    for (size_t i = 0; i < d.n; i++) {
        assert_string_equal(e.users[i].name, d.users[i].name);
        assert_memory_equal(&e.users[i].verifier, &d.users[i].verifier, sizeof v);
    }
    /* The format of the file, as documented. */
    const char *text = read_all(path);
    assert_non_null(strstr(text, "\"version\": 1"));
    assert_non_null(strstr(text, "\"users\": {"));
    assert_non_null(strstr(text, "\"salt\": \""));
    assert_non_null(strstr(text, "\"iterations\": 4096"));
    assert_non_null(strstr(text, "\"stored_key\": \""));
    assert_non_null(strstr(text, "\"server_key\": \""));
    assert_true(strstr(text, "\"user00\"") < strstr(text, "\"user49\""));

    /* Saving over a 0644 file leaves a 0600 one. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(vapp_userdir_save(&d, path, err), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* An empty directory round-trips too. */
    vapp_userdir empty;
    vapp_userdir_init(&empty);
    assert_int_equal(vapp_userdir_save(&empty, path, err), 0);
    assert_int_equal(vapp_userdir_load(&e, path, err), 0);
    assert_int_equal(e.n, 0);
    vapp_userdir_free(&d);
    vapp_userdir_free(&e);
}

static void test_refuses_unsafe_mode(void **st)
{
    (void)st;
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606, 0601, 0610, 0666, 0777};
    vapp_userdir d;
    vapp_userdir_init(&d);
    char err[VAPP_ERRLEN], want[64];
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        write_file("{\"version\": 1, \"users\": {}}", modes[i]);
        assert_int_equal(vapp_userdir_load(&d, path, err), -1);
        snprintf(want, sizeof want, "has mode %04o", (unsigned)modes[i]);
        assert_non_null(strstr(err, want));
        assert_non_null(strstr(err, "chmod 600"));
        assert_non_null(strstr(err, path));
    }
    for (mode_t m = 0400; m <= 0700; m += 0100) {
        write_file("{\"version\": 1, \"users\": {}}", m);
        assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    }
    /* Missing file, directory, not a regular file. */
    unlink(path);
    assert_int_equal(vapp_userdir_load(&d, path, err), -2);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(vapp_userdir_load(&d, path, err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    rmdir(path);
    vapp_userdir_free(&d);
}

#define SALT "000102030405060708090a0b0c0d0e0f"
#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define ENTRY(name, salt, it, sk, vk)                                                        \
    "\"" name "\": {\"salt\": \"" salt "\", \"iterations\": " it ", \"stored_key\": \"" sk \
    "\", \"server_key\": \"" vk "\"}"
#define GOOD ENTRY("alice", SALT, "4096", KEY, KEY)

static void test_refuses_malformed(void **st)
{
    (void)st;
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"", "line"},
        {"{", "line 1"},
        {"[]", "not a JSON object"},
        {"{\"version\": 1}", "\"users\" must be an object"},
        {"{\"users\": {}}", "\"version\" must be 1"},
        {"{\"version\": 2, \"users\": {}}", "newer Veil"},
        {"{\"version\": \"1\", \"users\": {}}", "\"version\" must be 1"},
        {"{\"version\": 1, \"users\": []}", "\"users\" must be an object"},
        {"{\"version\": 1, \"users\": {}, \"extra\": 0}", "unknown field \"extra\""},
        {"{\"version\": 1, \"users\": {" GOOD ", " GOOD "}}", "duplicate"},
        {"{\"version\": 1, \"users\": {\"alice\": 1}}", "must be an object"},
        {"{\"version\": 1, \"users\": {" ENTRY("bad name", SALT, "4096", KEY, KEY) "}}",
         "invalid user name"},
        {"{\"version\": 1, \"users\": {" ENTRY("", SALT, "4096", KEY, KEY) "}}", "invalid user name"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", "0001", "4096", KEY, KEY) "}}",
         "\"salt\" must be 32 hex digits"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT "00", "4096", KEY, KEY) "}}",
         "\"salt\" must be 32 hex digits"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", "zz0102030405060708090a0b0c0d0e0f", "4096",
                                              KEY, KEY) "}}",
         "\"salt\""},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "4095", KEY, KEY) "}}", "iterations"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "-1", KEY, KEY) "}}", "iterations"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "4096.5", KEY, KEY) "}}", "iterations"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "\"4096\"", KEY, KEY) "}}",
         "iterations"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "99999999999", KEY, KEY) "}}",
         "iterations"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "4096", "00", KEY) "}}",
         "\"stored_key\" must be 64 hex digits"},
        {"{\"version\": 1, \"users\": {" ENTRY("alice", SALT, "4096", KEY, KEY "0") "}}",
         "\"server_key\" must be 64 hex digits"},
        {"{\"version\": 1, \"users\": {\"alice\": {\"salt\": \"" SALT "\", \"iterations\": 4096, "
         "\"stored_key\": \"" KEY "\"}}}",
         "\"server_key\""},
        {"{\"version\": 1, \"users\": {\"alice\": {\"salt\": \"" SALT "\", \"iterations\": 4096, "
         "\"stored_key\": \"" KEY "\", \"server_key\": \"" KEY "\", \"password\": \"x\"}}}",
         "unknown field \"password\""},
    };
    vapp_userdir d;
    vapp_userdir_init(&d);
    char err[VAPP_ERRLEN];
    /* A good file first: a failed load must leave d as it was. */
    write_file("{\"version\": 1, \"users\": {" GOOD "}}", 0600);
    assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    assert_int_equal(d.n, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bad[i].text, 0600);
        err[0] = '\0';
        if (vapp_userdir_load(&d, path, err) != -1 || strstr(err, bad[i].msg) == NULL ||
            strstr(err, path) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].msg);
        assert_int_equal(d.n, 1);
        assert_non_null(vapp_userdir_find(&d, "alice"));
    }
    /* Uppercase hex is accepted. */
    write_file("{\"version\": 1, \"users\": {" ENTRY("alice", "000102030405060708090A0B0C0D0E0F",
                                                     "4096", KEY, KEY) "}}",
               0600);
    assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    assert_int_equal(d.users[0].verifier.salt[15], 0x0f);
    vapp_userdir_free(&d);
}

static void test_reload(void **st)
{
    (void)st;
    vapp_userdir d;
    vapp_userdir_init(&d);
    char err[VAPP_ERRLEN];
    assert_int_equal(vapp_userdir_reload(&d, err), -1); /* never loaded */
    write_file("{\"version\": 1, \"users\": {" GOOD "}}", 0600);
    assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    assert_int_equal(vapp_userdir_reload(&d, err), 0);
    assert_int_equal(vapp_userdir_reload(&d, err), 0);

    /* Another program saves (rename: a new inode). */
    vapp_userdir other;
    vapp_userdir_init(&other);
    veil_user_verifier v;
    make_verifier(&v, 1, 4096);
    assert_int_equal(vapp_userdir_put(&other, "bob", &v, NULL, err), 0);
    assert_int_equal(vapp_userdir_save(&other, path, err), 0);
    assert_int_equal(vapp_userdir_reload(&d, err), 1);
    assert_null(vapp_userdir_find(&d, "alice"));
    assert_non_null(vapp_userdir_find(&d, "bob"));
    assert_int_equal(vapp_userdir_reload(&d, err), 0);

    /* A broken edit keeps the users loaded before. */
    write_file("{ broken", 0600);
    assert_int_equal(vapp_userdir_reload(&d, err), -1);
    assert_non_null(vapp_userdir_find(&d, "bob"));
    vapp_userdir_free(&other);
    vapp_userdir_free(&d);
}

/* ------------------------------------------------------------------------ */
/* veil-user                                                                */

/* Runs veil-user with input on stdin; output (stdout+stderr) into out. Returns the exit status. */
static int run_tool(const char *input, char *out, size_t outcap, const char *a1, const char *a2,
                    const char *a3, const char *a4, const char *a5)
{
    int in[2], o[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(o), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        dup2(o[1], 2);
        close(in[0]);
        close(in[1]);
        close(o[0]);
        close(o[1]);
        execl(tool, tool, a1, a2, a3, a4, a5, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    if (input != NULL)
        assert_int_equal(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(o[0], out + len, outcap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(o[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The stored verifier equals libproto's derivation over the same password and salt. */
static void check_verifier(const char *name, const char *password, uint32_t iterations)
{
    vapp_userdir d;
    vapp_userdir_init(&d);
    char err[VAPP_ERRLEN];
    assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    const vapp_user *u = vapp_userdir_find(&d, name);
    assert_non_null(u);
    assert_int_equal(u->verifier.iterations, iterations);
    veil_user_verifier want;
    assert_int_equal(veil_user_verifier_make(password, strlen(password), u->verifier.salt,
                                             iterations, &want),
                     0);
    assert_memory_equal(&u->verifier, &want, sizeof want);
    /* And not with another password. */
    assert_int_equal(veil_user_verifier_make("not the password", 16, u->verifier.salt, iterations,
                                             &want),
                     0);
    assert_memory_not_equal(want.stored_key, u->verifier.stored_key, 32);
    vapp_userdir_free(&d);
}

static void test_tool_verifier(void **st)
{
    (void)st;
    char out[4096];
    const char *pw = "correct horse battery staple";
    char input[128];
    snprintf(input, sizeof input, "%s\n", pw);
    assert_int_equal(run_tool(input, out, sizeof out, "-f", path, "--iterations", "4096", "add"),
                     1); /* no name */
    int r = run_tool(input, out, sizeof out, "-f", path, "--iterations=4096", "add", "alice");
    if (r != 0)
        fail_msg("veil-user add: %d: %s", r, out);
    assert_non_null(strstr(out, "added user alice"));
    check_verifier("alice", pw, 4096);

    /* Salts are random: the same password for bob gives a different verifier. */
    r = run_tool(input, out, sizeof out, "-f", path, "--iterations=4096", "add", "bob");
    assert_int_equal(r, 0);
    check_verifier("bob", pw, 4096);
    vapp_userdir d;
    vapp_userdir_init(&d);
    char err[VAPP_ERRLEN];
    assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    assert_memory_not_equal(vapp_userdir_find(&d, "alice")->verifier.salt,
                            vapp_userdir_find(&d, "bob")->verifier.salt, VEIL_SCRAM_SALT_LEN);
    uint8_t old_salt[VEIL_SCRAM_SALT_LEN];
    memcpy(old_salt, vapp_userdir_find(&d, "alice")->verifier.salt, sizeof old_salt);
    vapp_userdir_free(&d);

    /* The password is nowhere in the file, in any obvious encoding. */
    const char *text = read_all(path);
    assert_null(strstr(text, pw));
    assert_null(strstr(text, "correct"));
    assert_null(strstr(text, "636f7272656374")); /* "correct" in hex */

    /* "\r\n" line ends: the \r is not part of the password. */
    r = run_tool("crlf-pass\r\n", out, sizeof out, "-f", path, "--iterations=4096", "passwd",
                 "alice");
    assert_int_equal(r, 0);
    check_verifier("alice", "crlf-pass", 4096);
    /* passwd draws a new salt. */
    assert_int_equal(vapp_userdir_load(&d, path, err), 0);
    assert_memory_not_equal(vapp_userdir_find(&d, "alice")->verifier.salt, old_salt,
                            sizeof old_salt);
    vapp_userdir_free(&d);

    /* Only the first line counts; the file lists both, mode 0600. */
    r = run_tool("first\nsecond\n", out, sizeof out, "-f", path, "--iterations=4096", "add",
                 "carol");
    assert_int_equal(r, 0);
    check_verifier("carol", "first", 4096);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    r = run_tool(NULL, out, sizeof out, "-f", path, "list", NULL, NULL);
    assert_int_equal(r, 0);
    assert_string_equal(out, "alice\nbob\ncarol\n");

    /* A password of the maximum length works; one byte more does not. */
    static char big[1100];
    memset(big, 'p', 1024);
    big[1024] = '\n';
    big[1025] = '\0';
    assert_int_equal(run_tool(big, out, sizeof out, "-f", path, "--iterations=4096", "add", "dave"),
                     0);
    big[1024] = '\0';
    check_verifier("dave", big, 4096);
    big[1024] = 'p';
    big[1025] = '\n';
    big[1026] = '\0';
    assert_int_equal(run_tool(big, out, sizeof out, "-f", path, "--iterations=4096", "add", "erin"),
                     8);
    assert_non_null(strstr(out, "too long"));
    assert_null(vapp_userdir_find(&d, "erin"));
}

/* ------------------------------------------------------------------------ */
/* At a terminal                                                            */

/* Reads from the pty master until want appears (or EOF/timeout); appends to acc. */
static int pty_expect(int master, char *acc, size_t cap, const char *want)
{
    size_t len = strlen(acc);
    for (int spins = 0; spins < 200 && (want == NULL || strstr(acc, want) == NULL); spins++) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r <= 0)
            continue;
        ssize_t n = read(master, acc + len, cap - 1 - len);
        if (n <= 0)
            return want == NULL ? 0 : -1; /* EIO once the child has closed the slave */
        len += (size_t)n;
        acc[len] = '\0';
    }
    return want == NULL || strstr(acc, want) != NULL ? 0 : -1;
}

/* Starts veil-user with a pseudo-terminal as its controlling terminal and stdio. */
static pid_t spawn_pty(int *master, const char *cmd, const char *name)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    char *sname = ptsname(m);
    assert_non_null(sname);
    char slave[128];
    snprintf(slave, sizeof slave, "%s", sname);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        int s = open(slave, O_RDWR);
        if (s < 0)
            _exit(126);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        if (s > 2)
            close(s);
        close(m);
        execl(tool, tool, "-f", path, "--iterations", "4096", cmd, name, (char *)NULL);
        _exit(127);
    }
    *master = m;
    return pid;
}

static int wait_status(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void test_tool_terminal(void **st)
{
    (void)st;
    static char acc[16384];
    int m;
    acc[0] = '\0';
    pid_t pid = spawn_pty(&m, "add", "tty-user");
    assert_int_equal(pty_expect(m, acc, sizeof acc, "New password for tty-user: "), 0);
    assert_int_equal(write(m, "s3cret-at-tty\n", 14), 14);
    assert_int_equal(pty_expect(m, acc, sizeof acc, "Retype the password: "), 0);
    assert_int_equal(write(m, "s3cret-at-tty\n", 14), 14);
    pty_expect(m, acc, sizeof acc, NULL);
    int status = wait_status(pid);
    close(m);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("status %d, output: %s", status, acc);
    /* Echo was off: the password never came back from the terminal. */
    assert_null(strstr(acc, "s3cret"));
    assert_non_null(strstr(acc, "added user tty-user"));
    check_verifier("tty-user", "s3cret-at-tty", 4096);

    /* Two different entries: nothing changes. */
    static char before[65536];
    strcpy(before, read_all(path)); /* both buffers are 64 KiB: the copy fits */
    acc[0] = '\0';
    pid = spawn_pty(&m, "passwd", "tty-user");
    assert_int_equal(pty_expect(m, acc, sizeof acc, "New password"), 0);
    assert_int_equal(write(m, "one-password\n", 13), 13);
    assert_int_equal(pty_expect(m, acc, sizeof acc, "Retype"), 0);
    assert_int_equal(write(m, "another-one\n", 12), 12);
    pty_expect(m, acc, sizeof acc, NULL);
    status = wait_status(pid);
    close(m);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 8);
    assert_non_null(strstr(acc, "do not match"));
    assert_string_equal(read_all(path), before);

    /* Interrupted at the prompt: the terminal gets its echo back. */
    acc[0] = '\0';
    pid = spawn_pty(&m, "passwd", "tty-user");
    assert_int_equal(pty_expect(m, acc, sizeof acc, "New password"), 0);
    struct termios t;
    /* Wait until echo is really off, then interrupt as ^C would. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tcgetattr(m, &t), 0);
        if (!(t.c_lflag & ECHO))
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_false(t.c_lflag & ECHO);
    assert_int_equal(kill(pid, SIGINT), 0);
    status = wait_status(pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGINT);
    assert_int_equal(tcgetattr(m, &t), 0);
    assert_true(t.c_lflag & ECHO);
    close(m);
    assert_string_equal(read_all(path), before);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_userdir PATH-TO-veil-user\n");
        return 2;
    }
    tool = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_put_del_find),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_unsafe_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_verifier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_terminal, setup, teardown),
    };
    return cmocka_run_group_tests_name("userdir", tests, NULL, NULL);
}
