/*
 * privilege - drop root, capabilities and the ability to regain them.
 * See privilege.h for the contract.
 *
 * A daemon calls privilege_drop(user, chroot_dir, keep, keep_count) once,
 * after it opened what needs root and before it reads any input; a -1
 * return is fatal for it.  privilege_lookup_user() and
 * privilege_lookup_group() turn names into ids (the master uses them to
 * check main.cf); privilege_is_root() says whether the process may switch
 * users at all.
 *
 * privilege_has_effective() is asked for every delivery (may the agent
 * act as the recipient?), so the sets privilege_drop() leaves are read
 * once, at its end, and answered from memory afterwards.  They change
 * only through this module from then on: privilege_clear_capabilities()
 * forgets them, and the capabilities that follow the file system uid are
 * always asked of the kernel.
 *
 * Order of the root path, and why:
 *   - the user is looked up first, while /etc/passwd is still visible;
 *   - the bounding set is cut while CAP_SETPCAP is still effective;
 *   - chroot needs CAP_SYS_CHROOT, so it comes before the uid change;
 *   - groups, then gid, then uid: once the uid is not 0 the process can no
 *     longer change its groups;
 *   - PR_SET_KEEPCAPS is set around the uid change only when capabilities
 *     are kept, else the kernel clears them all, as we want;
 *   - the permitted, effective and inheritable sets are then set to keep,
 *     the ambient set is cleared, and setuid(0) must fail.
 */
#include "privilege.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

/* getpwnam_r() and getgrnam_r() scratch space: start with what sysconf
 * suggests, grow on ERANGE, never past this. */
#define LOOKUP_BUF_MAX ((size_t)1 << 20)

int privilege_is_root(void)
{
    return geteuid() == 0;
}

static size_t lookup_initial_size(int name)
{
    long size = sysconf(name);
    if (size <= 0 || (size_t)size > LOOKUP_BUF_MAX)
        return 1024;
    return (size_t)size;
}

int privilege_lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
    if (user == NULL || user[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    size_t size = lookup_initial_size(_SC_GETPW_R_SIZE_MAX);
    for (;;) {
        char *scratch = malloc(size);
        if (scratch == NULL)
            return -1;
        struct passwd pw;
        struct passwd *found = NULL;
        int rc = getpwnam_r(user, &pw, scratch, size, &found);
        if (rc == 0 && found != NULL) {
            *uid = pw.pw_uid;
            *gid = pw.pw_gid;
        }
        free(scratch);
        if (rc == ERANGE && size < LOOKUP_BUF_MAX) {
            size *= 2;
            continue;
        }
        if (rc != 0) {
            errno = rc;
            return -1;
        }
        if (found == NULL) {
            errno = ENOENT;
            return -1;
        }
        return 0;
    }
}

int privilege_lookup_group(const char *group, gid_t *gid)
{
    if (group == NULL || group[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    size_t size = lookup_initial_size(_SC_GETGR_R_SIZE_MAX);
    for (;;) {
        char *scratch = malloc(size);
        if (scratch == NULL)
            return -1;
        struct group gr;
        struct group *found = NULL;
        int rc = getgrnam_r(group, &gr, scratch, size, &found);
        if (rc == 0 && found != NULL)
            *gid = gr.gr_gid;
        free(scratch);
        if (rc == ERANGE && size < LOOKUP_BUF_MAX) {
            size *= 2;
            continue;
        }
        if (rc != 0) {
            errno = rc;
            return -1;
        }
        if (found == NULL) {
            errno = ENOENT;
            return -1;
        }
        return 0;
    }
}

static int is_kept(cap_value_t cap, const cap_value_t *keep,
                   size_t keep_count)
{
    for (size_t i = 0; i < keep_count; i++)
        if (keep[i] == cap)
            return 1;
    return 0;
}

/* 1 once privilege_drop() succeeded in this process. */
static int privilege_done;

int privilege_dropped(void)
{
    return privilege_done;
}

/* The capability sets as privilege_drop() left them, read once when it
 * succeeded; NULL before, and again while privilege_drop() runs and after
 * privilege_clear_capabilities(). */
static cap_t privilege_dropped_caps;

static void privilege_forget_caps(void)
{
    if (privilege_dropped_caps != NULL)
        cap_free(privilege_dropped_caps);
    privilege_dropped_caps = NULL;
}

/* The capabilities the kernel takes from the effective set when the file
 * system uid changes from 0, and gives back when it returns to 0
 * (capabilities(7)): their state may differ from the one read at the end
 * of privilege_drop(). */
static int privilege_follows_fsuid(cap_value_t cap)
{
    switch (cap) {
    case CAP_CHOWN: case CAP_DAC_OVERRIDE: case CAP_DAC_READ_SEARCH:
    case CAP_FOWNER: case CAP_FSETID: case CAP_LINUX_IMMUTABLE:
    case CAP_MAC_OVERRIDE: case CAP_MKNOD:
        return 1;
    default:
        return 0;
    }
}

static int privilege_flag_set(cap_t caps, cap_value_t cap)
{
    cap_flag_value_t value = CAP_CLEAR;
    return cap_get_flag(caps, cap, CAP_EFFECTIVE, &value) == 0 &&
           value == CAP_SET;
}

int privilege_has_effective(cap_value_t cap)
{
    if (privilege_dropped_caps != NULL && !privilege_follows_fsuid(cap))
        return privilege_flag_set(privilege_dropped_caps, cap);
    cap_t caps = cap_get_proc();
    if (caps == NULL)
        return 0;
    int set = privilege_flag_set(caps, cap);
    cap_free(caps);
    return set;
}

int privilege_clear_capabilities(void)
{
    privilege_forget_caps();
    cap_t none = cap_init();
    if (none == NULL)
        return -1;
    int rc = cap_set_proc(none);
    cap_free(none);
    return rc;
}

static int has_permitted(cap_t current, cap_value_t cap)
{
    cap_flag_value_t value = CAP_CLEAR;
    if (cap_get_flag(current, cap, CAP_PERMITTED, &value) != 0)
        return 0;
    return value == CAP_SET;
}

/* Removes from the bounding set every capability not in keep, so that no
 * later exec (of a setuid or file-capability program) can bring it back. */
static int drop_bounding_set(const cap_value_t *keep, size_t keep_count)
{
    cap_value_t max = (cap_value_t)cap_max_bits();
    for (cap_value_t cap = 0; cap < max; cap++) {
        if (is_kept(cap, keep, keep_count))
            continue;
        if (cap_get_bound(cap) <= 0)
            continue; /* already gone, or unknown to this kernel */
        if (cap_drop_bound(cap) != 0) {
            log_error("drop capability %d from the bounding set: %s",
                      (int)cap, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Sets the permitted and effective sets to exactly the capabilities in
 * keep that the process has, the inheritable set to nothing, and clears
 * the ambient set.  With strict (root), a capability in keep that the
 * process does not have is an error; an ordinary user simply goes on
 * without it. */
static int set_capabilities(const cap_value_t *keep, size_t keep_count,
                            int strict)
{
    cap_t current = cap_get_proc();
    if (current == NULL) {
        log_error("cap_get_proc: %s", strerror(errno));
        return -1;
    }
    cap_t wanted = cap_init();
    if (wanted == NULL) {
        log_error("cap_init: %s", strerror(errno));
        cap_free(current);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < keep_count && rc == 0; i++) {
        if (!has_permitted(current, keep[i])) {
            if (!strict)
                continue;
            log_error("capability %d to keep is not permitted: %s",
                      (int)keep[i], strerror(EPERM));
            rc = -1;
            break;
        }
        if (cap_set_flag(wanted, CAP_PERMITTED, 1, &keep[i], CAP_SET) != 0 ||
            cap_set_flag(wanted, CAP_EFFECTIVE, 1, &keep[i], CAP_SET) != 0) {
            log_error("cap_set_flag %d: %s", (int)keep[i], strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0 && cap_set_proc(wanted) != 0) {
        log_error("cap_set_proc: %s", strerror(errno));
        rc = -1;
    }
    cap_free(wanted);
    cap_free(current);
    if (rc != 0)
        return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
        errno != EINVAL) { /* EINVAL: a kernel without ambient sets */
        log_error("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int check_ids(uid_t uid, gid_t gid)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) != 0 ||
        getresgid(&rgid, &egid, &sgid) != 0) {
        log_error("getresuid/getresgid: %s", strerror(errno));
        return -1;
    }
    if (ruid != uid || euid != uid || suid != uid || rgid != gid ||
        egid != gid || sgid != gid) {
        log_error("user switch to uid %ld gid %ld did not take effect",
                  (long)uid, (long)gid);
        return -1;
    }
    return 0;
}

static int set_keepcaps(int on)
{
    if (prctl(PR_SET_KEEPCAPS, on, 0, 0, 0) != 0) {
        log_error("prctl(PR_SET_KEEPCAPS, %d): %s", on, strerror(errno));
        return -1;
    }
    return 0;
}

/* Groups, gid, uid: real, effective and saved.  With keep_caps the
 * permitted set survives the uid change (the effective set does not; it
 * is set again afterwards). */
static int switch_user(uid_t uid, gid_t gid, int keep_caps)
{
    if (setgroups(1, &gid) != 0) {
        log_error("setgroups(%ld): %s", (long)gid, strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) != 0) {
        log_error("setresgid(%ld): %s", (long)gid, strerror(errno));
        return -1;
    }
    if (keep_caps && set_keepcaps(1) != 0)
        return -1;
    if (setresuid(uid, uid, uid) != 0) {
        log_error("setresuid(%ld): %s", (long)uid, strerror(errno));
        return -1;
    }
    if (keep_caps && set_keepcaps(0) != 0)
        return -1;
    return check_ids(uid, gid);
}

static int enter_chroot(const char *dir)
{
    if (chroot(dir) != 0) {
        log_error("chroot %s: %s", dir, strerror(errno));
        return -1;
    }
    if (chdir("/") != 0) {
        log_error("chdir / in chroot %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Once the process is not root, and CAP_SETUID was not kept, there must be
 * no way back: a process that could still become root must not go on.
 * Skipped when the target user is root itself. */
static int check_no_way_back(int target_is_root, const cap_value_t *keep,
                             size_t keep_count)
{
    if (target_is_root)
        return 0;
    if (!is_kept(CAP_SETUID, keep, keep_count) && setuid(0) == 0) {
        log_error("setuid(0) still succeeds after dropping privileges");
        return -1;
    }
    gid_t rgid, egid, sgid;
    if (getresgid(&rgid, &egid, &sgid) != 0) {
        log_error("getresgid: %s", strerror(errno));
        return -1;
    }
    if (rgid == 0 || egid == 0 || sgid == 0)
        return 0; /* the user's own group is root's: setgid(0) is allowed */
    if (!is_kept(CAP_SETGID, keep, keep_count) && setgid(0) == 0) {
        log_error("setgid(0) still succeeds after dropping privileges");
        return -1;
    }
    return 0;
}

#ifdef POSTINO_SANITIZE
/* The uid change made the process non-dumpable.  LeakSanitizer scans the
 * process at exit from a helper task that attaches to it with ptrace,
 * which a non-dumpable process refuses, and a non-dumpable process's
 * /proc/self files belong to root, out of reach of its new user.  So
 * sanitizer builds, and only they, make it dumpable again.  (Current
 * LeakSanitizer also raises the flag itself around its scan; this does
 * not depend on that.)  Production builds never do this: a dumpable
 * process can be traced, and its memory (keys, mail) read, by anything
 * that runs as its user. */
static int allow_sanitizer_attach(void)
{
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
        log_error("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
        return -1;
    }
    return 0;
}
#else
static int allow_sanitizer_attach(void)
{
    return 0;
}
#endif

static int set_no_new_privs(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        log_error("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int drop_as_root(const char *user, const char *chroot_dir,
                        const cap_value_t *keep, size_t keep_count)
{
    uid_t uid;
    gid_t gid;
    if (user == NULL || user[0] == '\0') {
        log_error("privilege drop: no user given");
        return -1;
    }
    if (privilege_lookup_user(user, &uid, &gid) != 0) {
        log_error("unknown user %s: %s", user,
                  errno == ENOENT ? "no such user" : strerror(errno));
        return -1;
    }
    if (drop_bounding_set(keep, keep_count) != 0)
        return -1;
    if (chroot_dir != NULL && enter_chroot(chroot_dir) != 0)
        return -1;
    if (switch_user(uid, gid, keep_count > 0 && uid != 0) != 0)
        return -1;
    if (set_capabilities(keep, keep_count, 1) != 0)
        return -1;
    if (allow_sanitizer_attach() != 0)
        return -1;
    return check_no_way_back(uid == 0, keep, keep_count);
}

/* Not root: no user switch, no chroot.  What capabilities the process may
 * have (file capabilities, ambient ones) go the same way as root's. */
static int drop_as_user(const char *chroot_dir, const cap_value_t *keep,
                        size_t keep_count)
{
    /* privilege_drop() runs once per process, so this warns once. */
    if (chroot_dir != NULL)
        log_warn("not running as root: chroot to %s skipped", chroot_dir);
    if (privilege_has_effective(CAP_SETPCAP) && drop_bounding_set(keep, keep_count) != 0)
        return -1;
    if (set_capabilities(keep, keep_count, 0) != 0)
        return -1;
    return check_no_way_back(0, keep, keep_count);
}

int privilege_drop(const char *user, const char *chroot_dir,
                   const cap_value_t *keep, size_t keep_count)
{
    if (keep == NULL && keep_count > 0) {
        log_error("privilege drop: %zu capabilities to keep, but no list",
                  keep_count);
        return -1;
    }
    privilege_done = 0;
    privilege_forget_caps();
    int rc = privilege_is_root()
        ? drop_as_root(user, chroot_dir, keep, keep_count)
        : drop_as_user(chroot_dir, keep, keep_count);
    if (rc != 0 || set_no_new_privs() != 0)
        return -1;
    /* When they cannot be read (no memory), privilege_has_effective()
     * asks the kernel each time, as before the drop. */
    privilege_dropped_caps = cap_get_proc();
    privilege_done = 1;
    return 0;
}
