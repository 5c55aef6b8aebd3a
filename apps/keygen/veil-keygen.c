/*
 * veil-keygen - creates a Veil server identity (Ed25519) or shows the
 * fingerprint of an existing one.  See docs/USAGE.md.
 *
 *   veil-keygen [-o FILE] [--force] [-q]
 *   veil-keygen --show FILE
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "veilapp.h"

static const char *const PROG = "veil-keygen";
static const char *const SYNOPSIS = "veil-keygen [-o FILE] [--force] | veil-keygen --show FILE";

static void usage(void)
{
    printf("Usage: veil-keygen [-o FILE] [--force] [-q]\n"
           "       veil-keygen --show FILE\n"
           "\n"
           "Creates a Veil server identity: an Ed25519 private key (PKCS#8 PEM, mode 0600)\n"
           "and its public key FILE.pub (SubjectPublicKeyInfo PEM), and prints the\n"
           "fingerprint (SHA-256 of the public key) that clients pin with --fingerprint\n"
           "or record in known_hosts.\n"
           "\n"
           "Options:\n"
           "  -o, --output FILE  private key file to write\n"
           "                     (default: ~/.config/veil/identity.key; missing\n"
           "                     directories are created with mode 0700)\n"
           "  -f, --force        replace an existing key file (its identity is lost)\n"
           "      --show FILE    print the fingerprint of an existing private key file\n"
           "                     as \"sha256:<64 hex digits>\" and exit\n"
           "  -q, --quiet        print only the fingerprint line\n"
           "  -h, --help         show this help and exit\n"
           "  -V, --version      show the version and exit\n"
           "\n"
           "Exit status:\n"
           "  0  success\n"
           "  1  bad arguments\n"
           "  6  local error: the key file exists (without --force), cannot be\n"
           "     written or read, has unsafe permissions, or is not a Veil key\n");
}

int main(int argc, char **argv)
{
    enum { OPT_SHOW = 256 };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
        {"show", required_argument, NULL, OPT_SHOW}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *out_path = NULL, *show_path = NULL;
    int force = 0, quiet = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:fqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'f': force = 1; break;
        case OPT_SHOW: show_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(); return VAPP_EXIT_OK;
        case 'V': printf("veil-keygen (Veil) 1\n"); return VAPP_EXIT_OK;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind < argc)
        vapp_usage_error(PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    if (show_path != NULL && (out_path != NULL || force))
        vapp_usage_error(PROG, SYNOPSIS, "--show cannot be combined with -o or --force");

    char err[VAPP_ERRLEN];
    veil_identity *id = NULL;
    uint8_t fp[VEIL_FINGERPRINT_LEN];
    char fps[VAPP_FPSTR_LEN];

    if (show_path != NULL) {
        if (vapp_identity_load(show_path, &id, err) != 0) {
            fprintf(stderr, "%s: %s\n", PROG, err);
            return VAPP_EXIT_LOCAL;
        }
        veil_identity_fingerprint(id, fp);
        vapp_fp_string(fp, fps);
        printf("%s\n", fps);
        veil_identity_free(id);
        return VAPP_EXIT_OK;
    }

    char def[PATH_MAX];
    if (out_path == NULL) {
        char dir[PATH_MAX - 32];
        if (vapp_config_dir(dir, sizeof dir, err) != 0) {
            fprintf(stderr, "%s: %s; use -o FILE\n", PROG, err);
            return VAPP_EXIT_LOCAL;
        }
        snprintf(def, sizeof def, "%s/identity.key", dir);
        out_path = def;
    }
    int r = vapp_identity_create(out_path, force, &id, err);
    if (r == -2) {
        fprintf(stderr, "%s: %s; not overwriting it (use --force to replace it)\n", PROG, err);
        return VAPP_EXIT_LOCAL;
    }
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return VAPP_EXIT_LOCAL;
    }
    veil_identity_fingerprint(id, fp);
    vapp_fp_string(fp, fps);
    veil_identity_free(id);
    if (quiet) {
        printf("%s\n", fps);
    } else {
        printf("private key: %s (mode 0600)\n"
               "public key:  %s.pub\n"
               "fingerprint: %s\n",
               out_path, out_path, fps);
    }
    return VAPP_EXIT_OK;
}
