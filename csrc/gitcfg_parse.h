/* gitcfg_parse.h: the entries of a git config file (gitcfg_parse.c), read by the
 * content judge (gitcfg.c). */
#ifndef LANDGATE_GITCFG_PARSE_H
#define LANDGATE_GITCFG_PARSE_H

#include <stddef.h>

struct gitcfg_entry {
    char *key;
    char *value;  /* NULL: a bare boolean */
    int used;     /* matched by an entry of the other file */
};

struct gitcfg {
    struct gitcfg_entry *e;
    int n, cap;
};

/* 0, -EINVAL (git would refuse the file too; *bad_line set when not NULL), -ENOMEM,
 * -EFBIG.  On success `c` holds the entries in file order: lg_gitcfg_free it. */
int lg_gitcfg_parse(const char *data, size_t len, struct gitcfg *c, int *bad_line);
void lg_gitcfg_free(struct gitcfg *c);

#endif
