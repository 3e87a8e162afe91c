/* judge_exec_int.h: what judge_exec.c (the exec judgement) and judge_shell.c (the shell
 * string's lexer) share.  Internal to the supervise module, not part of the cdef. */
#ifndef LANDGATE_JUDGE_EXEC_INT_H
#define LANDGATE_JUDGE_EXEC_INT_H

#include <stdbool.h>

#include "supervise_int.h"

struct judgement {
    const struct lg_tables *t;
    const struct lg_syntax *sx;
    struct lg_judge *b;  /* buffers */
    int denied;          /* a form matched a deny rule */
    int deny_rule;
    int all_allowed;     /* every required innermost form matched an allow rule */
    int allow_rule;
    int inherit;         /* AND of the allow rules' inherit */
    unsigned flags;
    int toolong;
    int has_by_path;     /* some rule names its program by path: build exe lines */
};

/* Is the word (len bytes) one of the compiled names / options in list? */
static inline bool lg_in_list(const unsigned *const *list, int n, const char *w, int len)
{
    for (int i = 0; i < n; i++)
        if (!lg_glob_rejects(list[i], w, (size_t)len) && lg_glob_match(list[i], w, (size_t)len, 0))
            return true;
    return false;
}

/* judge_exec.c: judge the chain that starts at words[0] named name0 */
void lg_judge_chain(struct judgement *j, const struct lg_words *w, const char *name0, int n0len,
                    const char *exe, int depth);
/* judge_shell.c: judge each simple command of a -c string; true if every one was allowed */
bool lg_judge_shell_string(struct judgement *j, const char *str, int len, int depth);

#endif
