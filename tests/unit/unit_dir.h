/*
 * unit_dir - scratch directories for the unit tests: make one under /tmp,
 * and remove it with what is in it (files, and empty subdirectories).
 * Include after <cmocka.h>; every function is static inline, since each test file
 * is a program of its own.
 *
 *     char *dir = unit_dir_make("queue-file-test");
 *     ... files in dir ...
 *     unit_dir_remove(dir);          (or unit_dir_remove_tree: any depth)
 *     free(dir);
 */
#ifndef POSTINO_UNIT_DIR_H
#define POSTINO_UNIT_DIR_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

/* A new empty directory /tmp/PREFIX-XXXXXX; the caller frees the name. */
static inline char *unit_dir_make(const char *prefix)
{
    struct buf name;
    buf_init(&name, PATH_MAX);
    assert_int_equal(buf_printf(&name, "/tmp/%s-XXXXXX", prefix), 0);
    char *dir = strdup(buf_cstr(&name));
    buf_free(&name);
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* Removes dir and its entries, best effort (a test's teardown). */
static inline void unit_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct buf path;
    buf_init(&path, PATH_MAX);
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        buf_reset(&path);
        if (buf_printf(&path, "%s/%s", dir, e->d_name) != 0)
            continue;
        if (unlink(path.data) != 0)
            (void)rmdir(path.data);
    }
    buf_free(&path);
    (void)closedir(d);
    (void)rmdir(dir);
}

static inline int unit_dir_remove_entry(const char *path,
                                        const struct stat *st, int type,
                                        struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it, symlinks not followed.  0 or -1. */
static inline int unit_dir_remove_tree(const char *dir)
{
    return nftw(dir, unit_dir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
