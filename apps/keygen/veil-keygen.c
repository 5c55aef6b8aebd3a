/*
 * veil-keygen - creates a Veil server identity (Ed25519, or RSA with --rsa)
 * or shows the fingerprint of an existing one.  See docs/USAGE.md.
 *
 *   veil-keygen [-o FILE] [--rsa [--bits N]] [--force] [-q]
 *   veil-keygen --show FILE
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "veilapp.h"

static const char *const PROG = "veil-keygen";
static const char *const SYNOPSIS =
    "veil-keygen [-o FILE] [--rsa [--bits N]] [--force] | veil-keygen --show FILE";

#define RSA_DEFAULT_BITS 3072
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192

static void usage(void)
{
    printf("Usage: veil-keygen [-o FILE] [--rsa [--bits N]] [--force] [-q]\n"
           "       veil-keygen --show FILE\n"
           "\n"
           "Creates a Veil server identity: an Ed25519 private key (or RSA with --rsa;\n"
           "PKCS#8 PEM, mode 0600) and its public key FILE.pub (SubjectPublicKeyInfo\n"
           "PEM), and prints the fingerprint (SHA-256 of the public key) that clients\n"
           "pin with --fingerprint or record in known_hosts.\n"
           "\n"
           "Options:\n"
           "  -o, --output FILE  private key file to write\n"
           "                     (default: ~/.config/veil/identity.key; missing\n"
           "                     directories are created with mode 0700)\n"
           "  -f, --force        replace an existing key file (its identity is lost)\n"
           "      --rsa          make an RSA key instead of Ed25519: the server then\n"
           "                     signs with RSA-PSS and also offers RSA key transport\n"
           "                     (veil-client --group rsa), which has NO forward\n"
           "                     secrecy: whoever gets this key later decrypts every\n"
           "                     recorded RSA-transport session\n"
           "      --bits N       RSA modulus size, %d to %d (default %d)\n"
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
           "     written or read, has unsafe permissions, or is not a Veil key\n",
           RSA_MIN_BITS, RSA_MAX_BITS, RSA_DEFAULT_BITS);
}

int main(int argc, char **argv)
{
    enum { OPT_SHOW = 256, OPT_RSA, OPT_BITS };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
        {"show", required_argument, NULL, OPT_SHOW}, {"quiet", no_argument, NULL, 'q'},
        {"rsa", no_argument, NULL, OPT_RSA},      {"bits", required_argument, NULL, OPT_BITS},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *out_path = NULL, *show_path = NULL;
    int force = 0, quiet = 0, rsa = 0, bits_given = 0;
    unsigned long bits = RSA_DEFAULT_BITS;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:fqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'f': force = 1; break;
        case OPT_SHOW: show_path = optarg; break;
        case 'q': quiet = 1; break;
        case OPT_RSA: rsa = 1; break;
        case OPT_BITS:
            if (vapp_parse_ulong(optarg, RSA_MIN_BITS, RSA_MAX_BITS, &bits) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--bits needs a number from %d to %d",
                                 RSA_MIN_BITS, RSA_MAX_BITS);
            bits_given = 1;
            break;
        case 'h': usage(); return VAPP_EXIT_OK;
        case 'V': printf("veil-keygen (Veil) 1\n"); return VAPP_EXIT_OK;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind < argc)
        vapp_usage_error(PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    if (show_path != NULL && (out_path != NULL || force || rsa || bits_given))
        vapp_usage_error(PROG, SYNOPSIS, "--show cannot be combined with -o, --force, --rsa or --bits");
    if (bits_given && !rsa)
        vapp_usage_error(PROG, SYNOPSIS, "--bits is for RSA keys: add --rsa");

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
    if (rsa && !quiet) {
        /* 3072 bits take a second or more; say why nothing happens. */
        fprintf(stderr, "%s: generating an RSA-%lu key...\n", PROG, bits);
        fflush(stderr);
    }
    int r = rsa ? vapp_identity_create_rsa(out_path, (unsigned)bits, force, &id, err)
                : vapp_identity_create(out_path, force, &id, err);
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
    char alg[32];
    snprintf(alg, sizeof alg, "%s", veil_identity_algorithm(id));
    veil_identity_free(id);
    if (quiet) {
        printf("%s\n", fps);
    } else {
        printf("private key: %s (%s, mode 0600)\n"
               "public key:  %s.pub\n"
               "fingerprint: %s\n",
               out_path, alg, out_path, fps);
    }
    return VAPP_EXIT_OK;
}
