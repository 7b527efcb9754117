/*
 * Unit tests for lib/queue_file: the record format, the commit, reading
 * back, corrupt files, marking recipients done.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "unit_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "queue_file.h"
#include "text.h"

struct expected_record {
    int type;
    const char *data;
};



/* Names in dir: how many, and the one that is not tmp.* (if any). */
static int list_dir(const char *dir, char *id, size_t id_size, int *temps)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    *temps = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        count++;
        if (strncmp(e->d_name, "tmp.", 4) == 0)
            (*temps)++;
        else if (id != NULL)
            assert_int_equal(text_copy(id, id_size, e->d_name), 0);
    }
    closedir(d);
    return count;
}

static void write_message(const char *dir, char id[QUEUE_ID_SIZE],
                          size_t content_size)
{
    struct queue_writer w;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(queue_writer_open(&w, dir, &error), 0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_TIME, "1700000000.5", 12),
                     0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_ATTR, "helo_name=x", 11),
                     0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_SENDER, "a@b.example",
                                      11), 0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_NOTIFY, "SUCCESS", 7), 0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_RCPT, "one@c.example",
                                      13), 0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_RCPT, "two@c.example",
                                      13), 0);
    char *content = malloc(content_size + 1);
    assert_non_null(content);
    for (size_t i = 0; i < content_size; i++)
        content[i] = (char)('a' + i % 26);
    assert_int_equal(queue_writer_add_content(&w, content, content_size), 0);
    free(content);
    assert_int_equal(queue_writer_commit(&w, id, &error), 0);
    buf_free(&error);
}

static void test_commit_and_read_back(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    char id[QUEUE_ID_SIZE];
    size_t content_size = 3 * QUEUE_BLOCK_MAX + 100;
    write_message(dir, id, content_size);
    assert_true(queue_id_valid(id));
    char listed[QUEUE_ID_SIZE];
    int temps;
    assert_int_equal(list_dir(dir, listed, sizeof(listed), &temps), 1);
    assert_int_equal(temps, 0);
    assert_string_equal(listed, id);

    struct buf path, error;
    buf_init(&path, 4096);
    buf_init(&error, 1024);
    buf_printf(&path, "%s/%s", dir, id);
    struct stat st;
    assert_int_equal(stat(path.data, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    struct queue_reader r;
    assert_int_equal(queue_reader_open(&r, path.data, &error), 0);
    struct queue_record rec;
    queue_record_init(&rec);
    static const struct expected_record head[] = {
        { 'V', "1" }, { 'S', NULL }, { 'T', "1700000000.5" },
        { 'A', "helo_name=x" }, { 'F', "a@b.example" }, { 'N', "SUCCESS" },
        { 'R', "one@c.example" }, { 'R', "two@c.example" }, { 'M', "" },
    };
    long long size_content_offset = -1, size_content_bytes = -1;
    long size_recipients = -1;
    off_t content_offset = -1, end_offset = -1;
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
        assert_int_equal(queue_reader_next(&r, &rec, &error), 1);
        assert_int_equal(rec.type, head[i].type);
        if (head[i].data)
            assert_string_equal(rec.data.data, head[i].data);
        if (rec.type == 'S')
            assert_int_equal(sscanf(rec.data.data, "%lld %lld %ld",
                                    &size_content_offset,
                                    &size_content_bytes, &size_recipients),
                             3);
        if (rec.type == 'M')
            content_offset = rec.offset;
    }
    size_t seen = 0, blocks = 0;
    int rc;
    while ((rc = queue_reader_next(&r, &rec, &error)) == 1 &&
           rec.type == 'B') {
        for (size_t i = 0; i < rec.data.len; i++)
            assert_int_equal(rec.data.data[i], 'a' + (seen + i) % 26);
        seen += rec.data.len;
        blocks++;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(rec.type, 'X');
    end_offset = rec.offset;
    assert_int_equal(seen, content_size);
    assert_int_equal(blocks, 4);
    assert_int_equal(queue_reader_next(&r, &rec, &error), 0); /* E */
    assert_int_equal(queue_reader_next(&r, &rec, &error), 0);
    assert_int_equal(size_content_offset, content_offset);
    assert_int_equal(size_content_bytes, end_offset - content_offset);
    assert_int_equal(size_recipients, 2);
    queue_record_free(&rec);
    queue_reader_close(&r);
    buf_free(&path);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

static void test_mark_done(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    char id[QUEUE_ID_SIZE];
    write_message(dir, id, 10);
    struct buf path, error;
    buf_init(&path, 4096);
    buf_init(&error, 1024);
    buf_printf(&path, "%s/%s", dir, id);
    int fd = open(path.data, O_RDWR);
    assert_true(fd >= 0);

    struct queue_reader r;
    queue_reader_attach(&r, fd);
    struct queue_record rec;
    queue_record_init(&rec);
    off_t first = -1, sender = -1;
    while (queue_reader_next(&r, &rec, &error) == 1) {
        if (rec.type == 'R' && first < 0)
            first = rec.offset;
        if (rec.type == 'F')
            sender = rec.offset;
    }
    queue_reader_close(&r);
    assert_int_equal(queue_file_mark_done(fd, first), 0);
    assert_int_equal(queue_file_mark_done(fd, first), 0); /* idempotent */
    errno = 0;
    assert_int_equal(queue_file_mark_done(fd, sender), -1);
    assert_int_equal(errno, EINVAL);

    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    queue_reader_attach(&r, fd);
    int done = 0, todo = 0;
    while (queue_reader_next(&r, &rec, &error) == 1) {
        if (rec.type == 'D') {
            assert_string_equal(rec.data.data, "one@c.example");
            done++;
        }
        if (rec.type == 'R') {
            assert_string_equal(rec.data.data, "two@c.example");
            todo++;
        }
    }
    assert_int_equal(done, 1);
    assert_int_equal(todo, 1);
    queue_reader_close(&r);
    close(fd);
    queue_record_free(&rec);
    buf_free(&path);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

static void test_writer_refuses_records_out_of_order(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    struct queue_writer w;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(queue_writer_open(&w, dir, &error), 0);
    static const int refused[] = { 'V', 'S', 'E', 'D', 'B', 'X', 'Z', 0 };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        errno = 0;
        assert_int_equal(queue_writer_add(&w, refused[i], "x", 1), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(queue_writer_add(&w, 'M', "", 0), 0);
    assert_int_equal(queue_writer_add(&w, 'F', "late", 4), -1);
    errno = 0;
    char big[16];
    memset(big, 'x', sizeof(big));
    assert_int_equal(queue_writer_add(&w, 'B', big, sizeof(big)), 0);
    queue_writer_abort(&w);
    int temps;
    assert_int_equal(list_dir(dir, NULL, 0, &temps), 0);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

/* Reads a whole file through the reader; returns the last result. */
static int read_all(const char *path, struct buf *error)
{
    struct queue_reader r;
    if (queue_reader_open(&r, path, error) != 0)
        return -2;
    struct queue_record rec;
    queue_record_init(&rec);
    int rc;
    while ((rc = queue_reader_next(&r, &rec, error)) == 1)
        ;
    queue_record_free(&rec);
    queue_reader_close(&r);
    return rc;
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_every_truncation_is_corrupt(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    char id[QUEUE_ID_SIZE];
    write_message(dir, id, 100);
    struct buf path, copy, whole, error;
    buf_init(&path, 4096);
    buf_init(&copy, 4096);
    buf_init(&whole, 1 << 20);
    buf_init(&error, 1024);
    buf_printf(&path, "%s/%s", dir, id);
    buf_printf(&copy, "%s/copy", dir);
    int fd = open(path.data, O_RDONLY);
    assert_true(fd >= 0);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        assert_int_equal(buf_append(&whole, chunk, (size_t)n), 0);
    close(fd);
    assert_int_equal(read_all(path.data, &error), 0);
    for (size_t cut = 0; cut < whole.len; cut++) {
        write_bytes(copy.data, whole.data, cut);
        buf_reset(&error);
        assert_int_equal(read_all(copy.data, &error), -1);
        assert_non_null(strstr(error.data, "corrupt queue file"));
    }
    buf_free(&path);
    buf_free(&copy);
    buf_free(&whole);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

struct corrupt_case {
    const char *name;
    const char *bytes;
    size_t len;
    const char *reason;
};

#define SIZE_REC "S\0\0\0\x2f" "              0               0               0"
#define HEAD "V\0\0\0\x01" "1" SIZE_REC

static const struct corrupt_case corrupt_cases[] = {
    { "empty", "", 0, "ends before its end record" },
    { "bad version", "V\0\0\0\x01" "2" SIZE_REC "M\0\0\0\0X\0\0\0\0E\0\0\0\0",
      6 + 52 + 15, "unknown format version" },
    { "unknown type", HEAD "Q\0\0\0\0", 6 + 52 + 5, "out of order" },
    { "block before content", HEAD "B\0\0\0\0", 6 + 52 + 5, "out of order" },
    { "too long", HEAD "F\x7f\0\0\0", 6 + 52 + 5, "too long" },
    { "data after end", HEAD "M\0\0\0\0X\0\0\0\0E\0\0\0\0junk",
      6 + 52 + 15 + 4, "data after the end record" },
    { "no size record", "V\0\0\0\x01" "1" "M\0\0\0\0X\0\0\0\0E\0\0\0\0",
      6 + 15, "out of order" },
    { "end inside header", HEAD "F\0\0", 6 + 52 + 3, "inside a record header" },
    { "end inside data", HEAD "F\0\0\0\x09" "ab", 6 + 52 + 7,
      "inside a record" },
};

static void test_corrupt_files(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    struct buf path, error;
    buf_init(&path, 4096);
    buf_init(&error, 1024);
    buf_printf(&path, "%s/bad", dir);
    for (size_t i = 0; i < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]);
         i++) {
        const struct corrupt_case *c = &corrupt_cases[i];
        write_bytes(path.data, c->bytes, c->len);
        buf_reset(&error);
        if (read_all(path.data, &error) != -1 ||
            strstr(buf_cstr(&error), c->reason) == NULL)
            fail_msg("%s: got \"%s\", wanted \"%s\"", c->name,
                     buf_cstr(&error), c->reason);
    }
    /* A minimal well-formed file reads to the end. */
    write_bytes(path.data, HEAD "F\0\0\0\0M\0\0\0\0X\0\0\0\0E\0\0\0\0",
                6 + 52 + 20);
    buf_reset(&error);
    assert_int_equal(read_all(path.data, &error), 0);
    buf_free(&path);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

static void test_full_disk_leaves_nothing(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char *dir = unit_dir_make("queue-file-test");
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        unit_dir_remove(dir);
    free(dir);
        skip();
    }
    struct queue_writer w;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(queue_writer_open(&w, dir, &error), 0);
    assert_int_equal(queue_writer_add(&w, 'F', "a@b", 3), 0);
    assert_int_equal(queue_writer_add(&w, 'R', "c@d", 3), 0);
    static char content[256 * 1024];
    memset(content, 'x', sizeof(content));
    int rc = queue_writer_add_content(&w, content, sizeof(content));
    char id[QUEUE_ID_SIZE];
    if (rc == 0) {
        rc = queue_writer_commit(&w, id, &error);
    } else {
        assert_int_equal(errno, ENOSPC);
        queue_writer_abort(&w);
    }
    assert_int_equal(rc, -1);
    int temps;
    assert_int_equal(list_dir(dir, NULL, 0, &temps), 0);
    /* Space is back: the next message goes in. */
    write_message(dir, id, 100);
    assert_true(queue_id_valid(id));
    assert_int_equal(umount(dir), 0);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

static void test_queue_id_valid(void **state)
{
    (void)state;
    assert_true(queue_id_valid("4F2A9C1B3D"));
    assert_true(queue_id_valid("000001"));
    assert_false(queue_id_valid("tmp.123"));
    assert_false(queue_id_valid("4f2a9c1b3d"));
    assert_false(queue_id_valid("ABC"));
    assert_false(queue_id_valid(""));
    assert_false(queue_id_valid("4F2A9C1B3D/../x"));
    assert_false(queue_id_valid("0123456789ABCDEF0123456789ABCDEF"));
}

static void test_ids_are_unique(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    char ids[50][QUEUE_ID_SIZE];
    for (int i = 0; i < 50; i++) {
        write_message(dir, ids[i], 10);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    int temps;
    assert_int_equal(list_dir(dir, NULL, 0, &temps), 50);
    assert_int_equal(temps, 0);
    unit_dir_remove(dir);
    free(dir);
}


/* The ID is known at open; nothing is visible before the commit, and the
 * commit uses that ID. */
static void test_id_known_at_open_and_kept(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    struct queue_writer w;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(queue_writer_open(&w, dir, &error), 0);
    char opened[QUEUE_ID_SIZE];
    assert_int_equal(text_copy(opened, sizeof(opened), queue_writer_id(&w)),
                     0);
    assert_true(queue_id_valid(opened));
    int temps;
    int before = list_dir(dir, NULL, 0, &temps);
    /* An unnamed file where the system allows it, else one tmp.* name. */
    assert_int_equal(before, w.anonymous ? 0 : 1);
    assert_int_equal(temps, before);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_SENDER, "", 0), 0);
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_writer_commit(&w, id, &error), 0);
    assert_string_equal(id, opened);
    char listed[QUEUE_ID_SIZE];
    assert_int_equal(list_dir(dir, listed, sizeof(listed), &temps), 1);
    assert_int_equal(temps, 0);
    assert_string_equal(listed, id);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

/* commit_in links into another directory; an abort leaves nothing. */
static void test_commit_into_another_directory(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    struct buf hold, error;
    buf_init(&hold, 4096);
    buf_init(&error, 1024);
    buf_printf(&hold, "%s/hold", dir);
    assert_int_equal(mkdir(hold.data, 0700), 0);
    struct buf incoming;
    buf_init(&incoming, 4096);
    buf_printf(&incoming, "%s/incoming", dir);
    assert_int_equal(mkdir(incoming.data, 0700), 0);

    struct queue_writer w;
    assert_int_equal(queue_writer_open(&w, incoming.data, &error), 0);
    assert_int_equal(queue_writer_add_content(&w, "x\n", 2), 0);
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_writer_commit_in(&w, hold.data, id, &error), 0);
    int temps;
    char listed[QUEUE_ID_SIZE];
    assert_int_equal(list_dir(hold.data, listed, sizeof(listed), &temps), 1);
    assert_string_equal(listed, id);
    assert_int_equal(list_dir(incoming.data, NULL, 0, &temps), 0);

    assert_int_equal(queue_writer_open(&w, incoming.data, &error), 0);
    assert_int_equal(queue_writer_add_content(&w, "y\n", 2), 0);
    queue_writer_abort(&w);
    assert_int_equal(list_dir(incoming.data, NULL, 0, &temps), 0);

    unit_dir_remove(hold.data);
    unit_dir_remove(incoming.data);
    buf_free(&hold);
    buf_free(&incoming);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

/* A writer in a held directory: the file is linked into it, a small
 * file (one write) has its size record filled in, and a commit into
 * another directory still goes there by name. */
static void test_held_directory(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    struct buf hold, error;
    buf_init(&hold, 4096);
    buf_init(&error, 1024);
    buf_printf(&hold, "%s/hold", dir);
    assert_int_equal(mkdir(hold.data, 0700), 0);
    struct queue_dir held;
    assert_int_equal(queue_dir_open(&held, dir, &error), 0);

    struct queue_writer w;
    assert_int_equal(queue_writer_open_in(&w, &held, &error), 0);
    assert_int_equal(queue_writer_add(&w, QUEUE_REC_RCPT, "r@c.example", 11),
                     0);
    assert_int_equal(queue_writer_add_content(&w, "hello\n", 6), 0);
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_writer_commit(&w, id, &error), 0);

    struct buf path;
    buf_init(&path, 4096);
    buf_printf(&path, "%s/%s", dir, id);
    struct queue_reader r;
    assert_int_equal(queue_reader_open(&r, path.data, &error), 0);
    struct queue_record rec;
    queue_record_init(&rec);
    long long content_offset = -1, content_size = -1, recipients = -1;
    off_t m_offset = -1;
    while (queue_reader_next(&r, &rec, &error) == 1) {
        if (rec.type == QUEUE_REC_SIZE)
            assert_int_equal(sscanf(rec.data.data, "%lld %lld %lld",
                                    &content_offset, &content_size,
                                    &recipients), 3);
        if (rec.type == QUEUE_REC_CONTENT)
            m_offset = rec.offset;
    }
    queue_reader_close(&r);
    queue_record_free(&rec);
    assert_true(m_offset > 0);
    assert_int_equal(content_offset, (long long)m_offset);
    assert_int_equal(recipients, 1);
    /* M (5) + B (5 + 6): up to the X record */
    assert_int_equal(content_size, 16);

    assert_int_equal(queue_writer_open_in(&w, &held, &error), 0);
    assert_int_equal(queue_writer_add_content(&w, "x\n", 2), 0);
    char held_id[QUEUE_ID_SIZE];
    assert_int_equal(queue_writer_commit_in(&w, hold.data, held_id, &error),
                     0);
    int temps;
    char listed[QUEUE_ID_SIZE];
    assert_int_equal(list_dir(hold.data, listed, sizeof(listed), &temps), 1);
    assert_string_equal(listed, held_id);

    queue_dir_close(&held);
    assert_int_not_equal(queue_dir_open(&held, "no/such/dir", &error), 0);
    assert_non_null(strstr(error.data, "no/such/dir"));
    assert_int_equal(unlink(path.data), 0);
    unit_dir_remove(hold.data);
    buf_free(&path);
    buf_free(&hold);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

/* Old tmp.* files go, new ones and queue files stay. */
static void test_remove_stale_temps(void **state)
{
    (void)state;
    char *dir = unit_dir_make("queue-file-test");
    static const char *const names[] = { "tmp.old", "tmp.new", "4F2A9C1B3D" };
    for (size_t i = 0; i < 3; i++) {
        struct buf path;
        buf_init(&path, 4096);
        buf_printf(&path, "%s/%s", dir, names[i]);
        int fd = open(path.data, O_CREAT | O_WRONLY, 0600);
        assert_true(fd >= 0);
        assert_int_equal(close(fd), 0);
        if (i != 1) {
            struct timespec times[2] = { { 1000, 0 }, { 1000, 0 } };
            assert_int_equal(utimensat(AT_FDCWD, path.data, times, 0), 0);
        }
        buf_free(&path);
    }
    assert_int_equal(queue_remove_stale_temps(dir, 3600), 1);
    int temps;
    assert_int_equal(list_dir(dir, NULL, 0, &temps), 2);
    assert_int_equal(temps, 1);
    unit_dir_remove(dir);
    free(dir);
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_and_read_back),
        cmocka_unit_test(test_mark_done),
        cmocka_unit_test(test_writer_refuses_records_out_of_order),
        cmocka_unit_test(test_every_truncation_is_corrupt),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_full_disk_leaves_nothing),
        cmocka_unit_test(test_queue_id_valid),
        cmocka_unit_test(test_ids_are_unique),
        cmocka_unit_test(test_id_known_at_open_and_kept),
        cmocka_unit_test(test_commit_into_another_directory),
        cmocka_unit_test(test_held_directory),
        cmocka_unit_test(test_remove_stale_temps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
