/*
 * smtpd_policy - who may send what to whom: the restriction lists with
 * Postfix's names, relay control, and the check that a recipient in one of
 * our domains exists.
 *
 * All lists are judged at RCPT time, as Postfix does with its default
 * smtpd_delay_reject = yes, in this order: smtpd_client_restrictions,
 * smtpd_helo_restrictions, smtpd_sender_restrictions,
 * smtpd_relay_restrictions, smtpd_recipient_restrictions; then, with
 * smtpd_reject_unlisted_recipient = yes, the recipient must exist.  In
 * each list the first restriction that decides ends the list: "permit"
 * moves on to the next list, "reject" refuses the recipient.
 *
 * Relay control (reject_unauth_destination): the recipient must be in
 * mydestination (or an [ip] literal of this host), virtual_alias_domains,
 * virtual_mailbox_domains or relay_domains; all but virtual_alias_domains
 * are judged by lib/address_resolve, as qmgr judges them.  The classic open-relay tricks are judged by where the
 * address would really go: "user%remote@ours" by remote (the percent hack),
 * "remote!user@ours" by remote (bang path), "\"user@remote\"@ours" by
 * remote (quoted '@'); a source route "@ours:user@remote" was already
 * stripped by the parser (RFC 5321 3.6.1), so remote is judged; a trailing
 * dot and letter case make no difference.  Every such address is refused
 * with "554 5.7.1 <addr>: Relay access denied" unless the client may relay.
 *
 * A table that fails gives "451 4.3.0 ... Temporary lookup failure", never
 * a 5xx; an unknown restriction name gives "451 4.3.5 Server configuration
 * error" and a log line that names it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtpd.h"
#include "table.h"

enum policy_result { POLICY_DUNNO, POLICY_PERMIT, POLICY_REJECT };

/* What a restriction judges: for the reply text and the lookup keys. */
struct policy_ctx {
    struct smtpd_session *s;
    const struct smtp_address *rcpt;
    struct buf *reply;
    int unlisted_checked;
};

static const struct {
    const char *name;
    enum smtpd_restriction_kind kind;
} policy_names[] = {
    { "permit", SMTPD_R_PERMIT },
    { "reject", SMTPD_R_REJECT },
    { "permit_mynetworks", SMTPD_R_PERMIT_MYNETWORKS },
    { "permit_sasl_authenticated", SMTPD_R_PERMIT_SASL },
    { "reject_unauth_destination", SMTPD_R_REJECT_UNAUTH_DESTINATION },
    { "reject_unlisted_recipient", SMTPD_R_REJECT_UNLISTED_RECIPIENT },
    { "reject_non_fqdn_sender", SMTPD_R_REJECT_NON_FQDN_SENDER },
    { "reject_non_fqdn_recipient", SMTPD_R_REJECT_NON_FQDN_RECIPIENT },
    { "reject_non_fqdn_helo_hostname", SMTPD_R_REJECT_NON_FQDN_HELO },
    { "reject_invalid_helo_hostname", SMTPD_R_REJECT_INVALID_HELO },
    { "check_client_access", SMTPD_R_CHECK_CLIENT_ACCESS },
    { "check_helo_access", SMTPD_R_CHECK_HELO_ACCESS },
    { "check_sender_access", SMTPD_R_CHECK_SENDER_ACCESS },
    { "check_recipient_access", SMTPD_R_CHECK_RECIPIENT_ACCESS },
    { "reject_unknown_client_hostname", SMTPD_R_REJECT_UNKNOWN_CLIENT },
    { "reject_unknown_reverse_client_hostname",
      SMTPD_R_REJECT_UNKNOWN_REVERSE_CLIENT },
};

static int policy_takes_table(enum smtpd_restriction_kind k)
{
    return k == SMTPD_R_CHECK_CLIENT_ACCESS ||
           k == SMTPD_R_CHECK_HELO_ACCESS ||
           k == SMTPD_R_CHECK_SENDER_ACCESS ||
           k == SMTPD_R_CHECK_RECIPIENT_ACCESS;
}

static enum smtpd_restriction_kind policy_kind(const char *name)
{
    for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]);
         i++)
        if (strcmp(policy_names[i].name, name) == 0)
            return policy_names[i].kind;
    return SMTPD_R_UNKNOWN;
}

/* ---- setup ---------------------------------------------------------- */

static void policy_parse_list(struct smtpd *d, const char *parameter,
                              struct smtpd_restrictions *list)
{
    list->parameter = parameter;
    struct text_list items;
    if (map_list_split(config_get_str(d->cfg, parameter), &items) != 0) {
        log_warn("%s: unbalanced '{': every recipient is deferred",
                 parameter);
        items.count = 0;
        items.items = NULL;
        list->items = calloc(1, sizeof(*list->items));
        if (list->items == NULL)
            log_fatal("out of memory");
        list->items[0].kind = SMTPD_R_UNKNOWN;
        list->items[0].name = strdup("{");
        list->count = 1;
        return;
    }
    list->items = calloc(items.count ? items.count : 1, sizeof(*list->items));
    if (list->items == NULL)
        log_fatal("out of memory");
    for (size_t i = 0; i < items.count; i++) {
        struct smtpd_restriction *r = &list->items[list->count++];
        r->name = strdup(items.items[i]);
        r->kind = policy_kind(items.items[i]);
        if (r->kind == SMTPD_R_UNKNOWN)
            log_warn("%s: unknown restriction \"%s\"", parameter,
                     items.items[i]);
        if (!policy_takes_table(r->kind))
            continue;
        if (i + 1 >= items.count) {
            log_warn("%s: %s needs a table", parameter, items.items[i]);
            r->kind = SMTPD_R_UNKNOWN;
            continue;
        }
        struct buf error;
        buf_init(&error, 4096);
        r->table = map_list_open(items.items[++i], 0, &error);
        if (error.len)
            log_warn("%s: %s", parameter, buf_cstr(&error));
        buf_free(&error);
    }
    text_list_free(&items);
}

static struct domain_list *policy_domains(struct smtpd *d, const char *name,
                                          unsigned flags)
{
    struct buf error;
    buf_init(&error, 4096);
    struct domain_list *list =
        domain_list_create(config_get_str(d->cfg, name), flags, &error);
    if (list == NULL)
        log_fatal("out of memory");
    if (error.len)
        log_warn("%s: %s", name, buf_cstr(&error));
    buf_free(&error);
    return list;
}

static struct map_list *policy_maps(struct smtpd *d, const char *name)
{
    struct buf error;
    buf_init(&error, 4096);
    struct map_list *maps =
        map_list_open(config_get_str(d->cfg, name), 0, &error);
    if (maps == NULL)
        log_fatal("out of memory");
    if (error.len)
        log_warn("%s: %s", name, buf_cstr(&error));
    buf_free(&error);
    return maps;
}

static void policy_open_mynetworks(struct smtpd *d)
{
    struct text_list nets;
    config_get_list(d->cfg, "mynetworks", &nets);
    struct buf error;
    buf_init(&error, 1024);
    d->mynetworks = network_list_create(nets.items, nets.count, &error);
    if (d->mynetworks == NULL)
        log_warn("mynetworks: %s: no client counts as in mynetworks",
                 buf_cstr(&error));
    buf_free(&error);
    text_list_free(&nets);
}

/* 1 when the list can refuse a recipient that is not ours. */
static int policy_guards_relay(const struct smtpd_restrictions *list)
{
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i].kind == SMTPD_R_REJECT_UNAUTH_DESTINATION ||
            list->items[i].kind == SMTPD_R_REJECT)
            return 1;
    return 0;
}

void smtpd_policy_init(struct smtpd *d)
{
    policy_open_mynetworks(d);
    struct buf error;
    buf_init(&error, 64 * 1024);
    d->resolver = address_resolver_create(d->cfg, &error);
    if (d->resolver == NULL)
        log_fatal("out of memory");
    if (error.len)
        log_warn("%s", buf_cstr(&error));
    buf_free(&error);
    d->virtual_alias_domains = policy_domains(d, "virtual_alias_domains", 0);
    d->local_recipient_maps = policy_maps(d, "local_recipient_maps");
    d->virtual_alias_maps = policy_maps(d, "virtual_alias_maps");
    d->virtual_mailbox_maps = policy_maps(d, "virtual_mailbox_maps");
    d->relay_recipient_maps = policy_maps(d, "relay_recipient_maps");
    policy_parse_list(d, "smtpd_client_restrictions", &d->client_restrictions);
    policy_parse_list(d, "smtpd_helo_restrictions", &d->helo_restrictions);
    policy_parse_list(d, "smtpd_sender_restrictions", &d->sender_restrictions);
    policy_parse_list(d, "smtpd_relay_restrictions", &d->relay_restrictions);
    policy_parse_list(d, "smtpd_recipient_restrictions",
                      &d->recipient_restrictions);
    /* As Postfix: without reject_unauth_destination (or a final reject)
     * in one of the two lists this would be an open relay.  Postfix
     * refuses to start; here every recipient is deferred with 451 4.3.5
     * and the log says what to fix, so the mistake is loud but no mail
     * is lost. */
    d->relay_unguarded = !policy_guards_relay(&d->relay_restrictions) &&
                         !policy_guards_relay(&d->recipient_restrictions);
    if (d->relay_unguarded)
        log_warn("smtpd_relay_restrictions or smtpd_recipient_restrictions "
                 "must contain reject_unauth_destination (or reject): "
                 "every recipient is deferred until one does");
}

static void policy_free_list(struct smtpd_restrictions *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        map_list_free(list->items[i].table);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

void smtpd_policy_free(struct smtpd *d)
{
    network_list_free(d->mynetworks);
    address_resolver_free(d->resolver);
    domain_list_free(d->virtual_alias_domains);
    map_list_free(d->local_recipient_maps);
    map_list_free(d->virtual_alias_maps);
    map_list_free(d->virtual_mailbox_maps);
    map_list_free(d->relay_recipient_maps);
    policy_free_list(&d->client_restrictions);
    policy_free_list(&d->helo_restrictions);
    policy_free_list(&d->sender_restrictions);
    policy_free_list(&d->relay_restrictions);
    policy_free_list(&d->recipient_restrictions);
}

/* ---- names ---------------------------------------------------------- */

static int policy_valid_literal(const char *name)
{
    size_t len = strlen(name);
    if (len < 3 || name[0] != '[' || name[len - 1] != ']' || len > 64)
        return 0;
    char inner[64];
    memcpy(inner, name + 1, len - 2);
    inner[len - 2] = '\0';
    unsigned char bytes[16];
    if (strncasecmp(inner, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, inner + 5, bytes) == 1;
    return inet_pton(AF_INET, inner, bytes) == 1;
}

int smtpd_policy_valid_hostname(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 255)
        return 0;
    if (name[0] == '[')
        return policy_valid_literal(name);
    size_t label = 0;
    int all_digits = 1;
    char prev = '.';
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (label == 0 || prev == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            if (c == '-' && label == 0)
                return 0;
            if (!isdigit((unsigned char)c))
                all_digits = 0;
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
        prev = c;
    }
    return prev != '-' && !all_digits;
}

static int policy_fqdn(const char *domain)
{
    if (domain[0] == '[')
        return 1;
    const char *dot = strchr(domain, '.');
    return dot != NULL && dot != domain && dot[1] != '\0';
}

/* The domain of an address, lower case, in out. */
static void policy_fold(struct buf *out, const char *text)
{
    buf_reset(out);
    for (const char *p = text; *p; p++)
        (void)buf_append_char(out, (char)tolower((unsigned char)*p));
}

/* ---- replies -------------------------------------------------------- */

static enum policy_result policy_reject(struct policy_ctx *c,
                                        const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum policy_result policy_reject(struct policy_ctx *c,
                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_reset(c->reply);
    (void)buf_vprintf(c->reply, fmt, ap);
    va_end(ap);
    return POLICY_REJECT;
}

static enum policy_result policy_config_error(struct policy_ctx *c,
                                              const char *parameter,
                                              const char *what)
{
    log_warn("%s: %s: server configuration error", parameter, what);
    return policy_reject(c, "451 4.3.5 Server configuration error");
}

static enum policy_result policy_lookup_error(struct policy_ctx *c,
                                              const char *what,
                                              const struct buf *error)
{
    log_warn("%s: %s lookup error: %s", c->s->client_id, what,
             buf_cstr(error));
    return policy_reject(c, "451 4.3.0 <%s>: Temporary lookup failure",
                         c->rcpt ? buf_cstr(&c->rcpt->address)
                                 : buf_cstr(&c->s->sender));
}

/* ---- access tables -------------------------------------------------- */

struct access_subject {
    const char *what;    /* "Recipient address", "Client host", ... */
    const char *shown;   /* in the reply, inside <> */
};

/* Applies a table's value: OK, DUNNO, REJECT [text], DEFER [text],
 * NNN [text], or a number (OK). */
static enum policy_result policy_access_action(struct policy_ctx *c,
                                               const char *parameter,
                                               const struct access_subject *subj,
                                               const char *value)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t word = strcspn(value, " \t");
    const char *text = value + word;
    while (*text == ' ' || *text == '\t')
        text++;
    if ((word == 2 && strncasecmp(value, "OK", 2) == 0) ||
        (word > 0 && strspn(value, "0123456789") == word &&
         !(word == 3 && (value[0] == '4' || value[0] == '5'))))
        return POLICY_PERMIT;
    if (word == 5 && strncasecmp(value, "DUNNO", 5) == 0)
        return POLICY_DUNNO;
    int code = 0;
    const char *dsn = NULL;
    if (word == 6 && strncasecmp(value, "REJECT", 6) == 0) {
        code = 554;
        dsn = "5.7.1";
    } else if (word == 5 && strncasecmp(value, "DEFER", 5) == 0) {
        code = 450;
        dsn = "4.7.1";
    } else if (word == 3 && (value[0] == '4' || value[0] == '5') &&
               strspn(value, "0123456789") == 3) {
        code = atoi(value);
        dsn = value[0] == '4' ? "4.7.1" : "5.7.1";
    } else {
        return policy_config_error(c, parameter, "unknown access action");
    }
    /* An enhanced status code at the start of the text replaces ours. */
    char status[16] = "";
    size_t slen = strspn(text, "0123456789.");
    if (slen >= 5 && slen < sizeof(status) && text[0] == dsn[0] &&
        (text[slen] == ' ' || text[slen] == '\0')) {
        memcpy(status, text, slen);
        status[slen] = '\0';
        dsn = status;
        text += slen;
        while (*text == ' ')
            text++;
    }
    return policy_reject(c, "%d %s <%s>: %s rejected: %s", code, dsn,
                         subj->shown, subj->what,
                         *text ? text : "Access denied");
}

/* Tries each key in turn; the first found decides. */
static enum policy_result policy_access_keys(struct policy_ctx *c,
                                             const struct smtpd_restriction *r,
                                             const char *parameter,
                                             const struct access_subject *subj,
                                             char *const *keys, size_t count)
{
    struct buf value, error;
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&error, 1024);
    enum policy_result result = POLICY_DUNNO;
    for (size_t i = 0; i < count; i++) {
        if (keys[i] == NULL || keys[i][0] == '\0')
            continue;
        int found = map_list_lookup(r->table, keys[i], &value, &error);
        if (found == TABLE_ERROR) {
            result = policy_lookup_error(c, r->name, &error);
            break;
        }
        if (found == TABLE_FOUND) {
            result = policy_access_action(c, parameter, subj,
                                          buf_cstr(&value));
            break;
        }
    }
    buf_free(&value);
    buf_free(&error);
    return result;
}

/* Keys for a domain and its parents, appended to keys[n..], leaving room
 * for reserve more: a name may have up to 127 labels, the key array
 * has POLICY_KEYS_MAX slots, so the deepest parents are not looked up. */
#define POLICY_KEYS_MAX 40

static size_t policy_domain_keys(char **keys, size_t n, size_t reserve,
                                 char *domain)
{
    for (char *p = domain; p && *p && n + reserve < POLICY_KEYS_MAX;) {
        keys[n++] = p;
        p = strchr(p, '.');
        if (p)
            p++;
    }
    return n;
}

static enum policy_result policy_check_address(struct policy_ctx *c,
                                               const struct smtpd_restriction *r,
                                               const char *parameter,
                                               const char *what,
                                               const char *address)
{
    struct buf folded, local;
    buf_init(&folded, SMTP_PATH_MAX + 1);
    buf_init(&local, SMTP_PATH_MAX + 2);
    policy_fold(&folded, address);
    char *keys[POLICY_KEYS_MAX];
    size_t n = 0;
    keys[n++] = folded.data ? folded.data : (char *)"<>";
    char *at = folded.data ? strrchr(folded.data, '@') : NULL;
    if (at != NULL) {
        (void)buf_append(&local, folded.data, (size_t)(at - folded.data) + 1);
        n = policy_domain_keys(keys, n, 1, at + 1);
        keys[n++] = local.data;
    }
    struct access_subject subj = { what, address };
    enum policy_result res = policy_access_keys(c, r, parameter, &subj,
                                                keys, n);
    buf_free(&folded);
    buf_free(&local);
    return res;
}

static enum policy_result policy_check_client(struct policy_ctx *c,
                                              const struct smtpd_restriction *r,
                                              const char *parameter)
{
    struct smtpd_session *s = c->s;
    char addr[SMTPD_ADDR_MAX], name[SMTPD_NAME_MAX + 1];
    memcpy(addr, s->client_addr, sizeof(addr));
    struct buf folded;
    buf_init(&folded, SMTPD_NAME_MAX + 1);
    policy_fold(&folded, s->client_name);
    memcpy(name, buf_cstr(&folded), folded.len + 1);
    buf_free(&folded);
    char *keys[POLICY_KEYS_MAX];
    char prefixes[4][SMTPD_ADDR_MAX];
    size_t n = 0;
    /* The name is the client's to choose (its reverse zone): room is kept
     * for the address and its three prefixes however many labels it has. */
    if (strcmp(name, "unknown") != 0)
        n = policy_domain_keys(keys, n, 4, name);
    keys[n++] = addr;
    /* 192.0.2.1, then 192.0.2, 192.0, 192 as Postfix's access(5). */
    if (strchr(addr, ':') == NULL) {
        for (int i = 0; i < 3; i++) {
            memcpy(prefixes[i], i ? prefixes[i - 1] : addr, SMTPD_ADDR_MAX);
            char *dot = strrchr(prefixes[i], '.');
            if (dot == NULL)
                break;
            *dot = '\0';
            keys[n++] = prefixes[i];
        }
    }
    struct access_subject subj = { "Client host", s->client_id };
    return policy_access_keys(c, r, parameter, &subj, keys, n);
}

static enum policy_result policy_check_helo(struct policy_ctx *c,
                                            const struct smtpd_restriction *r,
                                            const char *parameter)
{
    const char *helo = buf_cstr(&c->s->helo);
    if (helo[0] == '\0')
        return POLICY_DUNNO;
    struct buf folded;
    buf_init(&folded, c->s->helo.len + 1);
    policy_fold(&folded, helo);
    char *keys[POLICY_KEYS_MAX];
    size_t n = policy_domain_keys(keys, 0, 0, folded.data);
    struct access_subject subj = { "Helo command", helo };
    enum policy_result res = policy_access_keys(c, r, parameter, &subj,
                                                keys, n);
    buf_free(&folded);
    return res;
}

/* reject_unknown_client_hostname and its reverse-only variant, as Postfix:
 * a name that is missing or forged gets unknown_client_reject_code (450 by
 * default), a lookup that failed for now always 450; the enhanced status
 * is X.7.25 (RFC 7372: reverse DNS validation failed). */
static enum policy_result policy_unknown_client(struct policy_ctx *c,
                                                enum smtpd_peer_status status,
                                                const char *which)
{
    if (status == SMTPD_PEER_OK)
        return POLICY_DUNNO;
    int code = status == SMTPD_PEER_TEMP
                   ? 450 : c->s->smtpd->unknown_client_reject_code;
    return policy_reject(c, "%d %d.7.25 Client host rejected: cannot find "
                            "your %shostname, [%s]", code, code / 100,
                         which, c->s->client_addr);
}

/* ---- destinations --------------------------------------------------- */

enum domain_class {
    DOMAIN_REMOTE, DOMAIN_LOCAL, DOMAIN_VIRTUAL_ALIAS, DOMAIN_VIRTUAL_MAILBOX,
    DOMAIN_RELAY, DOMAIN_ERROR,
};

/* Postfix's order: local (mydestination and this host's [ip] literals),
 * virtual alias, virtual mailbox, relay; the classes other than virtual
 * alias come from the resolver that qmgr uses (lib/address_resolve.h). */
static enum domain_class policy_classify(const struct smtpd *d,
                                         const char *domain,
                                         struct buf *error)
{
    if (domain[0] == '\0')
        return DOMAIN_LOCAL; /* RCPT TO:<Postmaster> */
    enum address_class cls;
    if (address_resolve_class(d->resolver, domain, &cls, error) != 0)
        return DOMAIN_ERROR;
    if (cls == ADDRESS_CLASS_LOCAL)
        return DOMAIN_LOCAL;
    int r = domain_list_match(d->virtual_alias_domains, domain, error);
    if (r == DOMAIN_LIST_ERROR)
        return DOMAIN_ERROR;
    if (r == DOMAIN_LIST_MATCH)
        return DOMAIN_VIRTUAL_ALIAS;
    switch (cls) {
    case ADDRESS_CLASS_VIRTUAL: return DOMAIN_VIRTUAL_MAILBOX;
    case ADDRESS_CLASS_RELAY: return DOMAIN_RELAY;
    default: return DOMAIN_REMOTE;
    }
}

/* Where the address really goes when a relay along the way undoes the
 * percent hack, a bang path or a quoted '@': the domain, into out; "" when
 * there is no such trick. */
static void policy_hidden_domain(const struct smtp_address *a,
                                 struct buf *out)
{
    buf_reset(out);
    const char *local = buf_cstr(&a->local_part);
    size_t len = a->local_part.len;
    if (len >= 2 && local[0] == '"' && local[len - 1] == '"') {
        local++;
        len -= 2;
    }
    const char *end = local + len;
    const char *mark = NULL;
    for (const char *p = local; p < end; p++)
        if (*p == '@' || *p == '%')
            mark = p;
    if (mark != NULL) {
        (void)buf_append(out, mark + 1, (size_t)(end - mark - 1));
        return;
    }
    const char *bang = memchr(local, '!', len);
    if (bang != NULL)
        (void)buf_append(out, local, (size_t)(bang - local));
}

static int policy_is_auth_destination(struct policy_ctx *c,
                                      const char *domain, struct buf *error)
{
    struct buf folded;
    buf_init(&folded, SMTP_PATH_MAX + 1);
    policy_fold(&folded, domain);
    /* "remote." and "remote" are one domain. */
    if (folded.len > 0 && folded.data[folded.len - 1] == '.')
        buf_truncate(&folded, folded.len - 1);
    enum domain_class cls =
        policy_classify(c->s->smtpd, buf_cstr(&folded), error);
    buf_free(&folded);
    if (cls == DOMAIN_ERROR)
        return -1;
    return cls != DOMAIN_REMOTE;
}

static enum policy_result policy_unauth_destination(struct policy_ctx *c)
{
    const struct smtp_address *a = c->rcpt;
    if (a->flags & SMTP_ADDR_POSTMASTER)
        return POLICY_DUNNO;
    struct buf hidden, error;
    buf_init(&hidden, SMTP_PATH_MAX + 1);
    buf_init(&error, 1024);
    int ok = policy_is_auth_destination(c, buf_cstr(&a->domain), &error);
    policy_hidden_domain(a, &hidden);
    if (ok == 1 && (a->flags & (SMTP_ADDR_HAS_PERCENT | SMTP_ADDR_HAS_BANG |
                                SMTP_ADDR_QUOTED_AT))) {
        /* An empty hidden domain ("user%@ours") goes nowhere legitimate. */
        ok = hidden.len == 0
                 ? 0 : policy_is_auth_destination(c, buf_cstr(&hidden),
                                                  &error);
    }
    enum policy_result res = POLICY_DUNNO;
    if (ok < 0)
        res = policy_lookup_error(c, "relay domain", &error);
    else if (ok == 0)
        res = policy_reject(c, "554 5.7.1 <%s>: Relay access denied",
                            buf_cstr(&a->address));
    buf_free(&hidden);
    buf_free(&error);
    return res;
}

/* Recipient validation, as Postfix's reject_unlisted_recipient. */
static enum policy_result policy_unlisted_recipient(struct policy_ctx *c)
{
    const struct smtpd *d = c->s->smtpd;
    const struct smtp_address *a = c->rcpt;
    c->unlisted_checked = 1;
    if (a->flags & SMTP_ADDR_POSTMASTER)
        return POLICY_DUNNO;
    struct buf error, value, key;
    buf_init(&error, 1024);
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&key, SMTP_PATH_MAX + 1);
    policy_fold(&key, buf_cstr(&a->address));
    struct buf folded_domain;
    buf_init(&folded_domain, SMTP_DOMAIN_MAX + 1);
    policy_fold(&folded_domain, buf_cstr(&a->domain));
    enum domain_class cls = policy_classify(d, buf_cstr(&folded_domain),
                                            &error);
    const struct map_list *primary = NULL;
    const char *table_name = NULL;
    switch (cls) {
    case DOMAIN_LOCAL:
        primary = d->local_recipient_maps;
        table_name = "local recipient table";
        break;
    case DOMAIN_VIRTUAL_ALIAS:
        table_name = "virtual alias table";
        break;
    case DOMAIN_VIRTUAL_MAILBOX:
        primary = d->virtual_mailbox_maps;
        table_name = "virtual mailbox table";
        break;
    case DOMAIN_RELAY:
        primary = d->relay_recipient_maps;
        table_name = "relay recipient table";
        break;
    default:
        break;
    }
    enum policy_result res = POLICY_DUNNO;
    const char *delim = d->recipient_delimiter;
    int local = cls == DOMAIN_LOCAL;
    if (cls == DOMAIN_ERROR) {
        res = policy_lookup_error(c, "domain", &error);
    } else if (table_name != NULL &&
               !((cls == DOMAIN_LOCAL || cls == DOMAIN_RELAY) &&
                 map_list_count(primary) == 0)) {
        /* An empty local_recipient_maps or relay_recipient_maps means
         * "accept everyone", as in Postfix. */
        int r = map_list_lookup_address(d->virtual_alias_maps, key.data,
                                        delim, local, &value, &error);
        if (r == TABLE_NOT_FOUND && primary != NULL)
            r = map_list_lookup_address(primary, key.data, delim, local,
                                        &value, &error);
        if (r == TABLE_ERROR)
            res = policy_lookup_error(c, table_name, &error);
        else if (r == TABLE_NOT_FOUND)
            res = policy_reject(c, "550 5.1.1 <%s>: Recipient address "
                                   "rejected: User unknown in %s",
                                buf_cstr(&a->address), table_name);
    }
    buf_free(&error);
    buf_free(&value);
    buf_free(&key);
    buf_free(&folded_domain);
    return res;
}

/* ---- evaluation ----------------------------------------------------- */

/* Restrictions that judge a recipient, which MAIL time does not have. */
static int policy_needs_recipient(enum smtpd_restriction_kind k)
{
    return k == SMTPD_R_REJECT_UNAUTH_DESTINATION ||
           k == SMTPD_R_REJECT_UNLISTED_RECIPIENT ||
           k == SMTPD_R_REJECT_NON_FQDN_RECIPIENT ||
           k == SMTPD_R_CHECK_RECIPIENT_ACCESS;
}

/* "reject": the text names what the list judges, as Postfix's does.  A
 * client that could authenticate but has not is told so (RFC 4954 6:
 * 530 5.7.0 Authentication required). */
static enum policy_result policy_reject_all(struct policy_ctx *c,
                                            const struct smtpd_restrictions *l)
{
    struct smtpd_session *s = c->s;
    const char *p = l->parameter;
    if (strcmp(p, "smtpd_client_restrictions") == 0) {
        if (s->smtpd->sasl_enable && !s->sasl_done)
            return policy_reject(c, "530 5.7.0 Authentication required");
        return policy_reject(c, "554 5.7.1 <%s>: Client host rejected: "
                                "Access denied", s->client_id);
    }
    if (strcmp(p, "smtpd_helo_restrictions") == 0)
        return policy_reject(c, "554 5.7.1 <%s>: Helo command rejected: "
                                "Access denied", buf_cstr(&s->helo));
    if (strcmp(p, "smtpd_sender_restrictions") == 0 || c->rcpt == NULL)
        return policy_reject(c, "554 5.7.1 <%s>: Sender address rejected: "
                                "Access denied", buf_cstr(&s->sender));
    return policy_reject(c, "554 5.7.1 <%s>: Recipient address rejected: "
                            "Access denied", buf_cstr(&c->rcpt->address));
}

static enum policy_result policy_one(struct policy_ctx *c,
                                     const struct smtpd_restrictions *list,
                                     const struct smtpd_restriction *r)
{
    struct smtpd_session *s = c->s;
    const struct smtp_address *a = c->rcpt;
    if (a == NULL && policy_needs_recipient(r->kind))
        return policy_config_error(c, list->parameter, r->name);
    const char *helo = buf_cstr(&s->helo);
    const char *sender = buf_cstr(&s->sender);
    switch (r->kind) {
    case SMTPD_R_PERMIT:
        return POLICY_PERMIT;
    case SMTPD_R_REJECT:
        return policy_reject_all(c, list);
    case SMTPD_R_PERMIT_MYNETWORKS:
        return s->in_mynetworks ? POLICY_PERMIT : POLICY_DUNNO;
    case SMTPD_R_PERMIT_SASL:
        return s->sasl_done ? POLICY_PERMIT : POLICY_DUNNO;
    case SMTPD_R_REJECT_UNAUTH_DESTINATION:
        return policy_unauth_destination(c);
    case SMTPD_R_REJECT_UNLISTED_RECIPIENT:
        return policy_unlisted_recipient(c);
    case SMTPD_R_REJECT_NON_FQDN_SENDER: {
        const char *at = strrchr(sender, '@');
        if (sender[0] == '\0' || (at && policy_fqdn(at + 1)))
            return POLICY_DUNNO;
        return policy_reject(c, "504 5.5.2 <%s>: Sender address rejected: "
                                "need fully-qualified address", sender);
    }
    case SMTPD_R_REJECT_NON_FQDN_RECIPIENT:
        if ((a->flags & SMTP_ADDR_POSTMASTER) ||
            policy_fqdn(buf_cstr(&a->domain)))
            return POLICY_DUNNO;
        return policy_reject(c, "504 5.5.2 <%s>: Recipient address "
                                "rejected: need fully-qualified address",
                             buf_cstr(&a->address));
    case SMTPD_R_REJECT_NON_FQDN_HELO:
        if (helo[0] == '\0' || policy_fqdn(helo))
            return POLICY_DUNNO;
        return policy_reject(c, "504 5.5.2 <%s>: Helo command rejected: "
                                "need fully-qualified hostname", helo);
    case SMTPD_R_REJECT_INVALID_HELO:
        if (helo[0] == '\0' || smtpd_policy_valid_hostname(helo))
            return POLICY_DUNNO;
        return policy_reject(c, "501 5.5.2 <%s>: Helo command rejected: "
                                "Invalid name", helo);
    case SMTPD_R_CHECK_CLIENT_ACCESS:
        return policy_check_client(c, r, list->parameter);
    case SMTPD_R_CHECK_HELO_ACCESS:
        return policy_check_helo(c, r, list->parameter);
    case SMTPD_R_CHECK_SENDER_ACCESS:
        return policy_check_address(c, r, list->parameter, "Sender address",
                                    sender);
    case SMTPD_R_CHECK_RECIPIENT_ACCESS:
        return policy_check_address(c, r, list->parameter,
                                    "Recipient address",
                                    buf_cstr(&a->address));
    case SMTPD_R_REJECT_UNKNOWN_CLIENT:
        return policy_unknown_client(c, s->name_status, "");
    case SMTPD_R_REJECT_UNKNOWN_REVERSE_CLIENT:
        return policy_unknown_client(c, s->reverse_status, "reverse ");
    default:
        break;
    }
    return policy_config_error(c, list->parameter, r->name);
}

static enum policy_result policy_list(struct policy_ctx *c,
                                      const struct smtpd_restrictions *list)
{
    for (size_t i = 0; i < list->count; i++) {
        enum policy_result r = policy_one(c, list, &list->items[i]);
        if (r != POLICY_DUNNO)
            return r;
    }
    return POLICY_DUNNO;
}

int smtpd_policy_recipient(struct smtpd_session *s,
                           const struct smtp_address *rcpt,
                           struct buf *reply)
{
    const struct smtpd *d = s->smtpd;
    struct policy_ctx c = { s, rcpt, reply, 0 };
    if (d->relay_unguarded) {
        (void)policy_config_error(&c, "smtpd_relay_restrictions",
                                  "no reject_unauth_destination");
        return -1;
    }
    const struct smtpd_restrictions *lists[] = {
        &d->client_restrictions, &d->helo_restrictions,
        &d->sender_restrictions, &d->relay_restrictions,
        &d->recipient_restrictions,
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if (!d->delay_reject && (lists[i] == &d->client_restrictions ||
                                 lists[i] == &d->sender_restrictions))
            continue; /* judged at MAIL */
        if (policy_list(&c, lists[i]) == POLICY_REJECT)
            return -1;
    }
    if (d->reject_unlisted_recipient && !c.unlisted_checked &&
        policy_unlisted_recipient(&c) == POLICY_REJECT)
        return -1;
    return 0;
}

int smtpd_policy_sender(struct smtpd_session *s, struct buf *reply)
{
    const struct smtpd *d = s->smtpd;
    struct policy_ctx c = { s, NULL, reply, 0 };
    if (policy_list(&c, &d->client_restrictions) == POLICY_REJECT ||
        policy_list(&c, &d->sender_restrictions) == POLICY_REJECT)
        return -1;
    return 0;
}
