/*
 * local_user - the users the local agent acts as (struct local_user in
 * local.h): made from a passwd entry or copied, each string owned.
 */
#include <stdlib.h>
#include <string.h>

#include "local.h"

static char *local_strdup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

int local_user_from_passwd(struct local_user *u, const struct passwd *pw)
{
    memset(u, 0, sizeof(*u));
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    u->name = local_strdup_or_empty(pw->pw_name);
    u->home = local_strdup_or_empty(pw->pw_dir);
    u->shell = local_strdup_or_empty(pw->pw_shell);
    if (u->name == NULL || u->home == NULL || u->shell == NULL) {
        local_user_free(u);
        return -1;
    }
    return 0;
}

int local_user_copy(struct local_user *dst, const struct local_user *src)
{
    struct passwd pw = {
        .pw_name = src->name, .pw_uid = src->uid, .pw_gid = src->gid,
        .pw_dir = src->home, .pw_shell = src->shell,
    };
    return local_user_from_passwd(dst, &pw);
}

void local_user_free(struct local_user *u)
{
    free(u->name);
    free(u->home);
    free(u->shell);
    memset(u, 0, sizeof(*u));
}
