/* prog_types.c: load each program of prog_types.bpf.o alone and print the kernel's answer. */
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int quiet(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
    (void)lvl; (void)fmt; (void)ap;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    libbpf_set_print(quiet);
    struct bpf_object *names = bpf_object__open_file(argv[1], NULL);
    if (!names)
        return 1;
    struct bpf_program *p;
    bpf_object__for_each_program(p, names) {
        struct bpf_object *o = bpf_object__open_file(argv[1], NULL);
        if (!o)
            return 1;
        struct bpf_program *q;
        bpf_object__for_each_program(q, o)
            bpf_program__set_autoload(q, strcmp(bpf_program__name(q), bpf_program__name(p)) == 0);
        int err = bpf_object__load(o);
        printf("%-24s %-32s %s\n", bpf_program__name(p), bpf_program__section_name(p),
               err ? strerror(-err) : "loaded");
        bpf_object__close(o);
    }
    bpf_object__close(names);
    return 0;
}
