/* judge_shell.c: a shell's -c string, split into its simple commands, each judged
 * (judge_exec.c's header: a shell started with -c is judged by each simple command of
 * its string as well, up to lg_syntax.depth strings deep).
 *
 * Apart from judge_exec.c because it is a lexer (quotes, escapes, redirections,
 * here-documents, substitutions), the one part of the exec judgement that reads a
 * language; each command it finds goes back to lg_judge_chain, which may come back
 * here one level deeper.  `explain` runs this same code (lg_judge_exec).
 */
#include <stdbool.h>
#include <string.h>

#include "judge_exec_int.h"

/* Tokenise a shell string into simple commands and judge each one.
 * Returns true if every segment was judged allowed. */
bool lg_judge_shell_string(struct judgement *j, const char *str, int len, int depth)
{
    if (depth >= j->sx->depth || depth >= LG_DEPTH_MAX)
        return false;
    struct lg_words *w = &j->b->segw[depth];
    char *buf = j->b->seg + (size_t)depth * LG_CMD_MAX;
    size_t bpos = 0;
    bool all = true;
    bool any = false;
    int i = 0;
    w->n = 0;
    j->flags |= LG_EV_SHELL;

    /* State of the current word. */
    bool in_word = false, skip_next = false, at_start = true, drop_segment = false;
    size_t wstart = 0;
    char heredoc[64];
    size_t heredoc_len = 0;
    bool pending_heredoc = false;

#define FLUSH_WORD()                                                                   \
    do {                                                                               \
        if (in_word) {                                                                 \
            buf[bpos++] = '\0';                                                        \
            if (skip_next) {                                                           \
                if (pending_heredoc && heredoc_len == 0) {                             \
                    size_t hl = bpos - 1 - wstart;                                     \
                    if (hl >= sizeof heredoc)                                          \
                        hl = sizeof heredoc - 1;                                       \
                    memcpy(heredoc, buf + wstart, hl);                                 \
                    heredoc_len = hl;                                                  \
                }                                                                      \
                skip_next = false;                                                     \
            } else if (!drop_segment) {                                                \
                const char *wp = buf + wstart;                                         \
                int wl = (int)(bpos - 1 - wstart);                                     \
                bool assign = false;                                                   \
                if (at_start) {                                                        \
                    const char *eq = memchr(wp, '=', (size_t)wl);                      \
                    assign = eq != NULL && eq != wp;                                   \
                    for (const char *q = wp; assign && q < eq; q++)                    \
                        if (!(*q == '_' || (*q >= 'A' && *q <= 'Z') ||                 \
                              (*q >= 'a' && *q <= 'z') || (q > wp && *q >= '0' && *q <= '9'))) \
                            assign = false;                                            \
                }                                                                      \
                bool keyword = at_start && !assign &&                                  \
                               lg_in_list(j->sx->keywords, j->sx->n_keywords, wp, wl);    \
                if (at_start && !assign &&                                             \
                    lg_in_list(j->sx->compound, j->sx->n_compound, wp, wl))               \
                    drop_segment = true;                                               \
                else if (!assign && !keyword) {                                        \
                    if (w->n >= w->cap) {                                              \
                        j->toolong = 1;                                                \
                        return false;                                                  \
                    }                                                                  \
                    w->w[w->n] = wp;                                                   \
                    w->len[w->n] = wl;                                                 \
                    w->n++;                                                            \
                    at_start = false;                                                  \
                }                                                                      \
            }                                                                          \
            in_word = false;                                                           \
        }                                                                              \
    } while (0)

#define END_SEGMENT()                                                                  \
    do {                                                                               \
        FLUSH_WORD();                                                                  \
        if (w->n > 0) {                                                                \
            int save_allowed = j->all_allowed;                                         \
            j->all_allowed = 1;                                                        \
            int b0len;                                                                 \
            const char *b0 = lg_basename(w->w[0], w->len[0], &b0len);                  \
            lg_judge_chain(j, w, b0, b0len, NULL, depth + 1);                                \
            if (!j->all_allowed)                                                       \
                all = false;                                                           \
            j->all_allowed = save_allowed;                                             \
            any = true;                                                                \
            /* the segment's words are done: reuse the space (recursion used depth+1) */ \
        }                                                                              \
        w->n = 0;                                                                      \
        at_start = true;                                                               \
        drop_segment = false;                                                          \
        skip_next = false;                                                             \
    } while (0)

#define PUT(ch)                                                                        \
    do {                                                                               \
        if (bpos + 2 >= LG_CMD_MAX) {                                                  \
            j->toolong = 1;                                                            \
            return false;                                                              \
        }                                                                              \
        if (!in_word) {                                                                \
            in_word = true;                                                            \
            wstart = bpos;                                                             \
        }                                                                              \
        buf[bpos++] = (ch);                                                            \
    } while (0)

    while (i < len) {
        char c = str[i];
        if (c == '\n' && pending_heredoc && heredoc_len > 0) {
            /* skip the here-document body up to its delimiter line */
            END_SEGMENT();
            i++;
            while (i < len) {
                int e = i;
                while (e < len && str[e] != '\n')
                    e++;
                int ll = e - i;
                const char *lp = str + i;
                while (ll > 0 && *lp == '\t') {
                    lp++;
                    ll--;
                }
                i = e < len ? e + 1 : e;
                if ((size_t)ll == heredoc_len && memcmp(lp, heredoc, heredoc_len) == 0)
                    break;
            }
            pending_heredoc = false;
            heredoc_len = 0;
            continue;
        }
        if (c == ' ' || c == '\t') {
            FLUSH_WORD();
            i++;
            continue;
        }
        if (c == '#' && !in_word) {
            while (i < len && str[i] != '\n')
                i++;
            continue;
        }
        if (c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '`') {
            END_SEGMENT();
            i++;
            continue;
        }
        if (c == '$' && i + 1 < len && str[i + 1] == '(') {
            END_SEGMENT();
            i += 2;
            continue;
        }
        if (c == '<' || c == '>') {
            /* a redirection: drop a preceding fd number, skip the operator and its target */
            if (in_word) {
                bool digits = true;
                for (size_t q = wstart; q < bpos; q++)
                    if (buf[q] < '0' || buf[q] > '9')
                        digits = false;
                if (digits) {
                    bpos = wstart;
                    in_word = false;
                } else {
                    FLUSH_WORD();
                }
            }
            if (c == '<' && i + 1 < len && str[i + 1] == '<') {
                pending_heredoc = true;
                heredoc_len = 0;
            }
            if ((c == '<' || c == '>') && i + 1 < len && str[i + 1] == '(') {
                END_SEGMENT();  /* process substitution */
                i += 2;
                continue;
            }
            while (i < len && (str[i] == '<' || str[i] == '>' || str[i] == '&' || str[i] == '|' ||
                               str[i] == '-'))
                i++;
            skip_next = true;
            continue;
        }
        if (c == '\\' && i + 1 < len) {
            if (str[i + 1] != '\n')
                PUT(str[i + 1]);
            i += 2;
            continue;
        }
        if (c == '\'') {
            PUT('\0');
            bpos--;  /* an empty '' is still a word */
            i++;
            while (i < len && str[i] != '\'')
                PUT(str[i++]);
            i++;
            continue;
        }
        if (c == '"') {
            PUT('\0');
            bpos--;
            i++;
            while (i < len && str[i] != '"') {
                if (str[i] == '\\' && i + 1 < len &&
                    (str[i + 1] == '"' || str[i + 1] == '\\' || str[i + 1] == '$' || str[i + 1] == '`')) {
                    PUT(str[i + 1]);
                    i += 2;
                    continue;
                }
                if (str[i] == '`' || (str[i] == '$' && i + 1 < len && str[i + 1] == '(')) {
                    /* command substitution inside quotes: judge what follows as
                     * a command (approximate: the quote state restarts) */
                    i += str[i] == '`' ? 1 : 2;
                    break;
                }
                PUT(str[i++]);
            }
            if (i < len && str[i] == '"')
                i++;
            else
                END_SEGMENT();
            continue;
        }
        PUT(c);
        i++;
    }
    END_SEGMENT();
#undef PUT
#undef END_SEGMENT
#undef FLUSH_WORD
    return any && all;
}
