/*
 * delivery_identity - switch the file system identity to a recipient and
 * back, or become one for good in a child (interface: delivery_identity.h).
 */
#include "delivery_identity.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include "log.h"
#include "privilege.h"

/* The agent's own identity, what leave() goes back to.  Once
 * privilege_drop() is done it is fixed (become() runs in a child, which
 * then execs), so it is read once; before that (the unit tests), at every
 * switch that is not inside another. */
static struct {
    int known;
    int switched;          /* enters not yet left (the inner ones too) */
    uid_t as_uid;          /* while switched: the identity acted as */
    gid_t as_gid, as_extra_gid;
    uid_t euid;
    gid_t egid;
    gid_t *groups;
    int group_count;
} delivery_identity_self;

/* 0, or -1 with errno. */
static int delivery_identity_read_self(void)
{
    if (delivery_identity_self.known &&
        (privilege_dropped() || delivery_identity_self.switched > 0))
        return 0;
    int n = getgroups(0, NULL);
    if (n < 0)
        return -1;
    gid_t *groups = calloc((size_t)n + 1, sizeof(gid_t));
    if (groups == NULL)
        return -1;
    n = getgroups(n, groups);
    if (n < 0) {
        int err = errno;
        free(groups);
        errno = err;
        return -1;
    }
    free(delivery_identity_self.groups);
    delivery_identity_self.euid = geteuid();
    delivery_identity_self.egid = getegid();
    delivery_identity_self.groups = groups;
    delivery_identity_self.group_count = n;
    delivery_identity_self.known = 1;
    return 0;
}

/* The agent's effective uid. */
static uid_t delivery_identity_euid(void)
{
    if (privilege_dropped() && delivery_identity_read_self() == 0)
        return delivery_identity_self.euid;
    return geteuid();
}

int delivery_identity_possible(uid_t uid)
{
    return uid == delivery_identity_euid() ||
           privilege_has_effective(CAP_SETUID);
}

/* Whether to switch at all: 0 nothing to do (the process's own uid without
 * privilege), 1 switch, -1 impossible (why says so). */
static int delivery_identity_needed(uid_t uid, struct buf *why)
{
    uid_t self = delivery_identity_euid();
    int privileged = privilege_has_effective(CAP_SETUID);
    if (uid == self && !privileged)
        return 0;
    if (!privileged && uid != self) {
        buf_printf(why, "cannot act as uid %ld: the delivery agent does not "
                   "run as root (it runs as uid %ld)", (long)uid, (long)self);
        return -1;
    }
    return 1;
}

/* The groups for user (primary gid first) and extra_gid.  The caller
 * frees *groups.  0 or -1. */
static int delivery_identity_groups(const char *user, gid_t gid,
                                    gid_t extra_gid, gid_t **groups,
                                    int *count)
{
    int n = 32;
    gid_t *list = NULL;
    for (;;) {
        gid_t *grown = realloc(list, (size_t)(n + 1) * sizeof(*list));
        if (grown == NULL) {
            free(list);
            return -1;
        }
        list = grown;
        int want = n;
        if (user == NULL) {
            list[0] = gid;
            n = 1;
            break;
        }
        if (getgrouplist(user, gid, list, &want) >= 0) {
            n = want;
            break;
        }
        if (want <= n || want > DELIVERY_IDENTITY_GROUPS_MAX) {
            free(list);
            return -1;
        }
        n = want;
    }
    if (extra_gid != (gid_t)-1)
        list[n++] = extra_gid;
    *groups = list;
    *count = n;
    return 0;
}

/* setfsuid cannot report failure: the only check is to read the value
 * back (an invalid id changes nothing and returns the current one). */
static int delivery_identity_set_fs(uid_t uid, gid_t gid)
{
    setfsgid(gid);
    if ((gid_t)setfsgid((gid_t)-1) != gid)
        return -1;
    setfsuid(uid);
    if ((uid_t)setfsuid((uid_t)-1) != uid)
        return -1;
    return 0;
}

/* An enter inside another: the identity already in effect costs nothing;
 * any other one is refused (leave would not go back to the outer one).
 * 0 or -1 (why). */
static int delivery_identity_enter_inner(struct delivery_identity *id,
                                         uid_t uid, gid_t gid,
                                         gid_t extra_gid, struct buf *why)
{
    if (uid != delivery_identity_self.as_uid ||
        gid != delivery_identity_self.as_gid ||
        extra_gid != delivery_identity_self.as_extra_gid) {
        buf_printf(why, "cannot act as uid %ld gid %ld: already acting as "
                   "uid %ld gid %ld", (long)uid, (long)gid,
                   (long)delivery_identity_self.as_uid,
                   (long)delivery_identity_self.as_gid);
        return -1;
    }
    id->inner = 1;
    delivery_identity_self.switched++;
    return 0;
}

int delivery_identity_enter(struct delivery_identity *id, const char *user,
                            uid_t uid, gid_t gid, gid_t extra_gid,
                            struct buf *why)
{
    memset(id, 0, sizeof(*id));
    int needed = delivery_identity_needed(uid, why);
    if (needed <= 0)
        return needed;
    if (extra_gid == gid)
        extra_gid = (gid_t)-1;
    if (delivery_identity_self.switched > 0)
        return delivery_identity_enter_inner(id, uid, gid, extra_gid, why);
    if (delivery_identity_read_self() != 0) {
        buf_printf(why, "getgroups: %s", strerror(errno));
        return -1;
    }
    /* The primary group and the extra one only, as Postfix's set_eugid:
     * no group database lookup for each delivery. */
    (void)user;
    gid_t groups[2] = { gid, extra_gid };
    size_t count = extra_gid != (gid_t)-1 ? 2 : 1;
    id->switched = 1;
    delivery_identity_self.switched++;
    delivery_identity_self.as_uid = uid;
    delivery_identity_self.as_gid = gid;
    delivery_identity_self.as_extra_gid = extra_gid;
    int rc = setgroups(count, groups);
    int err = errno;
    if (rc != 0 || delivery_identity_set_fs(uid, gid) != 0) {
        buf_printf(why, "cannot act as uid %ld gid %ld: %s", (long)uid,
                   (long)gid, rc != 0 ? strerror(err) : "setfsuid failed");
        delivery_identity_leave(id);
        return -1;
    }
    return 0;
}

void delivery_identity_leave(struct delivery_identity *id)
{
    if (id->inner)
        delivery_identity_self.switched--;
    if (id->switched) {
        if (delivery_identity_self.switched != 1)
            log_panic("identity left with %d enters inside it not left",
                      delivery_identity_self.switched - 1);
        uid_t uid = delivery_identity_self.euid;
        gid_t gid = delivery_identity_self.egid;
        if (delivery_identity_set_fs(uid, gid) != 0 ||
            setgroups((size_t)delivery_identity_self.group_count,
                      delivery_identity_self.groups) != 0)
            log_fatal("cannot switch back to uid %ld gid %ld: %s",
                      (long)uid, (long)gid, strerror(errno));
        delivery_identity_self.switched--;
    }
    memset(id, 0, sizeof(*id));
}

int delivery_identity_become(const char *user, uid_t uid, gid_t gid,
                             struct buf *why)
{
    int needed = delivery_identity_needed(uid, why);
    if (needed <= 0)
        return needed;
    gid_t *groups;
    int count;
    if (delivery_identity_groups(user, gid, (gid_t)-1, &groups, &count) != 0) {
        buf_printf(why, "cannot find the groups of uid %ld", (long)uid);
        return -1;
    }
    int rc = setgroups((size_t)count, groups);
    free(groups);
    if (rc != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0 || privilege_clear_capabilities() != 0) {
        buf_printf(why, "cannot become uid %ld gid %ld: %s", (long)uid,
                   (long)gid, strerror(errno));
        return -1;
    }
    if (uid != 0 && (setresuid(0, 0, 0) == 0 || getuid() != uid)) {
        buf_set_str(why, "the uid change did not hold");
        return -1;
    }
    return 0;
}
