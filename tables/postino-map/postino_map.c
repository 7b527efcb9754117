/*
 * postino-map - builds and queries Postino's lookup tables, as Postfix's
 * postmap and postalias do.  docs/TABLES.md is the manual.
 *
 *     postino-map [-afv] [-c DIR] TYPE:FILE ...     build FILE.db from FILE
 *     postino-map [-afv] [-c DIR] -q KEY TYPE:FILE ...   print KEY's value
 *     postino-map [-afv] [-c DIR] -q - TYPE:FILE ...     keys from stdin
 *     postino-map [-afv] [-c DIR] -d KEY TYPE:FILE ...   delete KEY (or -)
 *     postino-map [-afv] [-c DIR] -i TYPE:FILE           add from stdin
 *     postino-map [-afv] [-c DIR] -s TYPE:FILE ...       list every entry
 *     newaliases  [-v] [-c DIR]       build every alias_database table
 *
 * A plain FILE means hash:FILE.  -a reads sources in aliases(5) syntax
 * (also when the program is called postalias or newaliases); -f keeps the
 * case of keys.  Exit codes: 0 done or found; 1 not found, syntax errors,
 * usage; 2 a file that cannot be read or written, a broken table.
 *
 * main.cf comes from -c DIR, else $MAIL_CONFIG, else the compiled-in
 * directory; when that default main.cf does not exist the built-in
 * defaults are used, so that tables can be built before Postino is set up.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "postino_paths.h"

enum map_mode { MODE_BUILD, MODE_QUERY, MODE_DELETE, MODE_INSERT, MODE_LIST };

struct map_args {
    struct map_options opt;
    enum map_mode mode;
    const char *key;        /* -q KEY, -d KEY */
    const char *config_dir; /* -c DIR, or NULL */
    int newaliases;         /* called as newaliases */
    int mode_count;         /* how many of -q -d -i -s were given */
};

static _Noreturn void usage(int newaliases)
{
    if (newaliases)
        log_error("usage: newaliases [-v] [-c config_dir]");
    else
        log_error("usage: postino-map [-afv] [-c config_dir] "
                  "[-q key | -q - | -d key | -d - | -i | -s] "
                  "[type:]file ...");
    exit(MAP_EXIT_NO);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static void set_mode(struct map_args *args, enum map_mode mode,
                     const char *key)
{
    args->mode = mode;
    args->key = key;
    args->mode_count++;
}

/* Options; returns the index of the first table argument. */
static int parse_args(struct map_args *args, int argc, char **argv)
{
    const char *options = args->newaliases ? "c:v" : "ac:d:fiq:sv";
    int c;
    while ((c = getopt(argc, argv, options)) != -1) {
        switch (c) {
        case 'a': args->opt.alias_mode = 1; break;
        case 'c': args->config_dir = optarg; break;
        case 'd': set_mode(args, MODE_DELETE, optarg); break;
        case 'f': args->opt.keep_case = 1; break;
        case 'i': set_mode(args, MODE_INSERT, NULL); break;
        case 'q': set_mode(args, MODE_QUERY, optarg); break;
        case 's': set_mode(args, MODE_LIST, NULL); break;
        case 'v': log_set_verbose(1); break;
        default: usage(args->newaliases);
        }
    }
    if (args->mode_count > 1) {
        log_error("-q, -d, -i and -s exclude each other");
        usage(0);
    }
    if (args->newaliases ? optind != argc : optind == argc)
        usage(args->newaliases);
    if (args->mode == MODE_INSERT && argc - optind != 1) {
        log_error("-i takes exactly one table");
        usage(0);
    }
    return optind;
}

/* The configuration: -c DIR must hold a main.cf; the default one is
 * optional.  NULL (logged) on errors. */
static struct config *load_config(const char *explicit_dir)
{
    const char *dir = explicit_dir;
    if (dir == NULL)
        dir = getenv("MAIL_CONFIG");
    if (dir == NULL || dir[0] == '\0')
        dir = POSTINO_CONFIG_DIR;
    struct buf path;
    buf_init(&path, 4096);
    int exists = buf_printf(&path, "%s/main.cf", dir) == 0 &&
                 access(buf_cstr(&path), F_OK) == 0;
    buf_free(&path);
    if (exists || explicit_dir != NULL)
        return config_load_dir_flags(dir, CONFIG_QUIET_UNUSED, NULL);
    log_debug("%s/main.cf does not exist: built-in defaults", dir);
    struct config *cfg = config_create();
    if (cfg == NULL) {
        log_error("out of memory");
        return NULL;
    }
    if (config_set(cfg, "config_directory", dir, "command line", 0) != 0 ||
        config_check(cfg) != 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Parses the table arguments; NULL (logged) when one is unusable. */
static struct map_spec *parse_specs(char **names, int count)
{
    struct map_spec *specs = calloc((size_t)count, sizeof(*specs));
    if (specs == NULL) {
        log_error("out of memory");
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        if (map_spec_parse(names[i], &specs[i]) != 0) {
            for (int j = 0; j <= i; j++)
                map_spec_free(&specs[j]);
            free(specs);
            return NULL;
        }
    }
    return specs;
}

static void free_specs(struct map_spec *specs, int count)
{
    for (int i = 0; i < count; i++)
        map_spec_free(&specs[i]);
    free(specs);
}

/* The worse of two exit codes: an error beats "no", "no" beats "ok". */
static int worse(int a, int b)
{
    return a > b ? a : b;
}

static int build_all(const struct map_options *opt, struct map_spec *specs,
                     int count)
{
    int rc = MAP_EXIT_OK;
    for (int i = 0; i < count; i++)
        rc = worse(rc, map_build(opt, &specs[i]));
    return rc;
}

static int run_mode(const struct map_args *args, struct map_spec *specs,
                    int count)
{
    switch (args->mode) {
    case MODE_QUERY:
        if (strcmp(args->key, "-") == 0)
            return map_query_stdin(&args->opt, specs, count);
        return map_query(&args->opt, args->key, specs, count);
    case MODE_DELETE:
        return map_delete(&args->opt, args->key, specs, count);
    case MODE_INSERT:
        return map_insert(&args->opt, &specs[0]);
    case MODE_LIST:
        return map_list(&args->opt, specs, count);
    case MODE_BUILD:
        break;
    }
    return build_all(&args->opt, specs, count);
}

/* newaliases: every hash: and btree: table of alias_database. */
static int newaliases(struct config *cfg, const struct map_options *opt)
{
    struct text_list list;
    config_get_list(cfg, "alias_database", &list);
    int rc = MAP_EXIT_OK;
    for (size_t i = 0; i < list.count; i++) {
        struct map_spec spec;
        if (map_spec_parse(list.items[i], &spec) != 0) {
            rc = MAP_EXIT_ERROR;
        } else if (!map_spec_is_db(&spec)) {
            log_info("%s: not a hash or btree table, skipped",
                     list.items[i]);
        } else {
            log_debug("building %s", buf_cstr(&spec.full));
            rc = worse(rc, map_build(opt, &spec));
        }
        map_spec_free(&spec);
    }
    if (list.count == 0)
        log_info("alias_database is empty: nothing to build");
    text_list_free(&list);
    return rc;
}

int main(int argc, char **argv)
{
    log_init("postino-map", LOG_TO_TTY);
    struct map_args args = { .mode = MODE_BUILD };
    const char *called = argc > 0 ? base_name(argv[0]) : "postino-map";
    args.newaliases = strcmp(called, "newaliases") == 0;
    args.opt.alias_mode = args.newaliases || strcmp(called, "postalias") == 0;
    if (args.newaliases)
        log_init("newaliases", LOG_TO_TTY);
    int first = parse_args(&args, argc, argv);
    struct config *cfg = load_config(args.config_dir);
    if (cfg == NULL)
        return MAP_EXIT_ERROR;
    int rc;
    if (args.newaliases) {
        rc = newaliases(cfg, &args.opt);
    } else {
        int count = argc - first;
        struct map_spec *specs = parse_specs(argv + first, count);
        rc = specs == NULL ? MAP_EXIT_NO : run_mode(&args, specs, count);
        if (specs != NULL)
            free_specs(specs, count);
    }
    config_free(cfg);
    return rc;
}
