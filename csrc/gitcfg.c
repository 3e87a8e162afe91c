/* gitcfg.c: judge a git config file's new content (protected paths, DESIGN §2).
 *
 * git writes .git/config (and ~/.gitconfig, ~/.config/git/config) by
 * creating CONFIG.lock and renaming it over CONFIG.  The supervisor performs
 * that rename itself and, before it does, judges the bytes: an entry that
 * makes git run a program (core.pager, alias.x=!cmd, filter.*...) and was
 * not in the file before is refused, so `git config user.name x` works and
 * `git config core.pager 'sh -c evil'` does not.  Entries the file already
 * had are the user's, not the agent's: they may stay.
 *
 * This file: which keys make git run a program, and the comparison of the
 * new file's entries with the old one's.  The files are read by gitcfg_parse.c
 * (git's config syntax to a list of entries), apart because the parser is the
 * larger half and has no policy in it: it answers what the file says, this
 * file decides whether that may be installed.  Anything the parser cannot read
 * is refused (fail closed): git would refuse to read that file too.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gitcfg_parse.h"
#include "supervise_int.h"

/* Keys (git's --list spelling, compared lower-cased) whose value git runs or
 * that make git read or write a file this judge never sees.  '*' matches any
 * run of characters, dots included. */
static const char *const runs_program[] = {
    "core.pager", "core.editor", "core.askpass", "core.sshcommand", "core.gitproxy",
    "core.hookspath", "core.fsmonitor", "core.alternaterefscommand",
    "core.worktree",        /* checkout would write the work tree elsewhere (into ~) */
    "core.attributesfile",  /* attributes name filter drivers */
    "core.excludesfile", "sequence.editor", "diff.external", "diff.*.command", "*.textconv",
    "filter.*", "merge.*.driver", "difftool.*.cmd", "mergetool.*.cmd", "credential.helper",
    "credential.*.helper", "gpg.program", "gpg.*.program", "pager.*", "include.*", "includeif.*",
    "uploadpack.packobjectshook", "remote.*.uploadpack", "remote.*.receivepack", "remote.*.vcs",
    "protocol.*",           /* protocol.ext.allow=always + an ext:: url runs a command */
    "url.*.insteadof", "url.*.pushinsteadof", "sendemail.*", "web.browser", "browser.*", "man.*",
    "instaweb.*", "trace2.*", "extensions.worktreeconfig", "ssh.variant",
};

/* '*' matches any run (dots included); everything else itself. */
static int key_match(const char *pat, const char *key)
{
    if (*pat == '\0')
        return *key == '\0';
    if (*pat == '*') {
        for (const char *k = key;; k++) {
            if (key_match(pat + 1, k))
                return 1;
            if (*k == '\0')
                return 0;
        }
    }
    return tolower((unsigned char)*key) == *pat && key_match(pat + 1, key + 1);
}

/* Why this entry may make git run a program; NULL if it does not. */
static const char *entry_reason(const struct gitcfg_entry *e)
{
    const char *v = e->value ? e->value : "";
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncmp(e->key, "alias.", 6) == 0 && e->value && *v == '!')
        return "an alias that runs a shell command";
    size_t kl = strlen(e->key);
    if (strncmp(e->key, "submodule.", 10) == 0 && kl > 7 && strcmp(e->key + kl - 7, ".update") == 0 &&
        *v == '!')
        return "a submodule update that runs a command";
    for (size_t i = 0; i < sizeof runs_program / sizeof runs_program[0]; i++)
        if (key_match(runs_program[i], e->key))
            return "git runs a program or reads another file it names";
    return NULL;
}

static int same(const struct gitcfg_entry *a, const struct gitcfg_entry *b)
{
    if (strcmp(a->key, b->key) != 0)
        return 0;
    if (!a->value || !b->value)
        return a->value == b->value;
    return strcmp(a->value, b->value) == 0;
}

int lg_gitcfg_judge(const char *old, size_t old_len, const char *new_, size_t new_len, char *why,
                    int whylen)
{
    struct gitcfg before, after;
    int line = 0;
    if (whylen > 0)
        why[0] = '\0';
    int rc = lg_gitcfg_parse(new_, new_len, &after, &line);
    if (rc < 0) {
        if (rc == -EINVAL)
            snprintf(why, (size_t)whylen, "line %d: not git config syntax", line);
        else
            snprintf(why, (size_t)whylen, "cannot judge it: %s", strerror(-rc));
        return 1;
    }
    /* The old file unparseable (or missing): nothing in the new one is the user's. */
    if (lg_gitcfg_parse(old ? old : "", old ? old_len : 0, &before, NULL) < 0)
        memset(&before, 0, sizeof before);
    int refused = 0;
    for (int i = 0; i < after.n && !refused; i++) {
        struct gitcfg_entry *e = &after.e[i];
        int kept = 0;
        for (int k = 0; k < before.n && !kept; k++) {
            if (!before.e[k].used && same(&before.e[k], e)) {
                before.e[k].used = 1;  /* present before the session: not the agent's */
                kept = 1;
            }
        }
        const char *r = kept ? NULL : entry_reason(e);
        if (r) {
            char shown[160];
            lg_escape_shown(shown, sizeof shown, e->value ? e->value : "(true)");
            snprintf(why, (size_t)whylen, "%s=\"%s\": %s", e->key, shown, r);
            refused = 1;
        }
    }
    lg_gitcfg_free(&before);
    lg_gitcfg_free(&after);
    return refused;
}
