/*
 * virtual_quota - the size of a Maildir or an mbox file (interface and
 * usage: virtual_quota.h).
 */
#include "virtual_quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

long long virtual_quota_name_size(const char *name)
{
    const char *s = strstr(name, ",S=");
    if (s == NULL)
        return -1;
    s += 3;
    long long size = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (size > (long long)1e15)
            return -1;
        size = size * 10 + (*s - '0');
    }
    if (digits == 0 || (*s != '\0' && *s != ',' && *s != ':'))
        return -1;
    return size;
}

/* Adds the messages of dir_fd/sub to *used; *files counts the names. */
static int add_folder(int dir_fd, const char *path, const char *sub,
                      unsigned long long *used, long *files, struct buf *why)
{
    int fd = openat(dir_fd, sub,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        buf_printf(why, "open %s%s: %s", path, sub, strerror(errno));
        return -1;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        buf_printf(why, "read %s%s: %s", path, sub, strerror(errno));
        close(fd);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (++*files > VIRTUAL_QUOTA_FILES_MAX) {
            /* Too many to count: the box is full by any measure. */
            *used = ~0ULL;
            break;
        }
        long long size = virtual_quota_name_size(e->d_name);
        if (size < 0) {
            struct stat st;
            if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(st.st_mode))
                continue;
            size = (long long)st.st_size;
        }
        *used += (unsigned long long)size;
    }
    (void)closedir(d);
    return 0;
}

int virtual_quota_maildir(const char *path, unsigned long long *used,
                          struct buf *why)
{
    *used = 0;
    /* Without its trailing slashes, so that O_NOFOLLOW sees a symlink. */
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    struct buf dir;
    buf_init(&dir, 8192);
    if (buf_append(&dir, path, len) != 0) {
        buf_printf(why, "path too long: %s", path);
        buf_free(&dir);
        return -1;
    }
    int fd = open(buf_cstr(&dir),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int rc = errno == ENOENT ? 0 : -1;
        if (rc != 0)
            buf_printf(why, "open %s: %s", buf_cstr(&dir), strerror(errno));
        buf_free(&dir);
        return rc;
    }
    long files = 0;
    int rc = buf_append_char(&dir, '/');
    if (rc == 0)
        rc = add_folder(fd, buf_cstr(&dir), "new", used, &files, why);
    if (rc == 0 && *used != ~0ULL)
        rc = add_folder(fd, buf_cstr(&dir), "cur", used, &files, why);
    buf_free(&dir);
    close(fd);
    return rc;
}

int virtual_quota_mbox(const char *path, unsigned long long *used,
                       struct buf *why)
{
    *used = 0;
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        buf_printf(why, "lstat %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode))
        *used = (unsigned long long)st.st_size;
    return 0;
}
