/* judge_path.c: which path rules deny a path (DESIGN §2, §3).
 *
 * The rows (struct lg_path_rule) are the file_read and file_write rules in
 * the evaluator's order, compiled by sandbox/policy/compiled.py.  A deny row
 * decides unless it is a protected path's overridable deny and an exact
 * allow row of the same access names this very path (a glob-free file), or
 * a directory holding it that the protected pattern itself covers.  The open
 * check and `explain` both call lg_judge_path.
 */
#include <string.h>

#include "supervise_int.h"

/* Does the exact allow row `a` name `path` in a way that overrides the
 * protected deny row `d`? */
static int overrides(const struct lg_path_rule *a, const struct lg_path_rule *d, const char *path,
                     size_t len)
{
    size_t el = strlen(a->exact);
    if (!a->exact_dir)
        return el == len && memcmp(a->exact, path, len) == 0;
    while (el > 1 && a->exact[el - 1] == '/')
        el--;
    int beneath = len >= el && memcmp(a->exact, path, el) == 0 &&
                  (len == el || path[el] == '/' || (el == 1 && a->exact[0] == '/'));
    /* d->base: the protected directory when d covers only some of its entries
     * (`.git/hooks/` but *.sample): an allow of that directory opens them too. */
    return beneath && lg_glob_match(d->base ? d->base : d->glob, a->exact, strlen(a->exact), 1);
}

int lg_judge_path(const struct lg_tables *t, const char *path, size_t len, int access, int *rule)
{
    int bits = 0;
    *rule = -1;
    for (int i = 0; i < t->n_paths; i++) {
        const struct lg_path_rule *r = &t->paths[i];
        if (r->effect != LG_EFFECT_DENY || (bits & r->access) == r->access)
            continue;  /* an allow row, or nothing new to learn from this one */
        if (!lg_glob_match(r->glob, path, len, 1))
            continue;
        int overridden = 0;
        for (int k = 0; r->overridable && k < t->n_paths && !overridden; k++) {
            const struct lg_path_rule *a = &t->paths[k];
            overridden = a->effect == LG_EFFECT_ALLOW && a->exact && (a->access & r->access) &&
                         overrides(a, r, path, len);
        }
        if (overridden)
            continue;
        if ((r->access & access) && *rule < 0)
            *rule = r->rule;
        bits |= r->access;
    }
    return bits;
}

/* The rows of `access` whose glob matches path (explain lists them): their
 * indices into t->paths, at most max; returns how many. */
int lg_path_hits(const struct lg_tables *t, const char *path, size_t len, int access, int *hits,
                 int max)
{
    int n = 0;
    for (int i = 0; i < t->n_paths && n < max; i++)
        if ((t->paths[i].access & access) && lg_glob_match(t->paths[i].glob, path, len, 1))
            hits[n++] = i;
    return n;
}
