/* opengate.h: what the BPF open gate (opengate.bpf.c) and its loader (supervise_bpf.c)
 * share: map layouts and the denial event.  Plain fixed-width types only, so that
 * both the BPF target and the host compiler lay them out the same way. */
#ifndef LG_OPENGATE_H
#define LG_OPENGATE_H

#define LG_GATE_PATH_MAX 4096      /* PATH_MAX: bpf_d_path's buffer */
#define LG_GATE_DFA_STATES 8192    /* most states a compiled read DFA may have */
#define LG_GATE_DFA_TRANS 262144   /* most transitions (states x classes) */
#define LG_GATE_IDS 65536          /* identity map capacity (launch deny set + learned) */
#define LG_GATE_EV_PATH 1024       /* path bytes an event carries (LG_TARGET_MAX) */

/* why an event was sent */
#define LG_GATE_WHY_NAME 1         /* the DFA denied the real path */
#define LG_GATE_WHY_ID 2           /* the object is a denied identity (dev, ino) */
#define LG_GATE_WHY_DPATH 3        /* bpf_d_path failed: denied, fail closed */
#define LG_GATE_WHY_LONG 4         /* longer than the buffer / DFA input: denied, fail closed */

/* task storage: the tag of a sandboxed task */
struct lg_gate_tag {
    unsigned int session;          /* nonzero: this task is inside the sandbox */
    unsigned int pad;
};

/* identity map key: kernel s_dev (MAJOR << 20 | MINOR), inode number */
struct lg_gate_id {
    unsigned int dev;
    unsigned int pad;
    unsigned long long ino;
};

struct lg_gate_idval {
    int rule;                      /* rule number (lg_tables.refs index) */
    unsigned int gen;              /* i_generation when learned in the kernel */
    unsigned int learned;          /* 1: learned in the kernel (gen valid); 0: preloaded */
};

/* the DFA (one array element): walk s = start; s = trans[s * n_classes + classes[b]];
 * rule = accept[s] (-1: allowed) */
struct lg_gate_dfa {
    unsigned int n_classes;
    unsigned int n_states;
    unsigned int start;
    unsigned int enabled;          /* 0: no DFA loaded (judge by identity only) */
    unsigned char classes[256];
    int accept[LG_GATE_DFA_STATES];
    unsigned short trans[LG_GATE_DFA_TRANS];
};

/* counters (array map, per index) */
#define LG_GATE_CNT_DENIED 0       /* denials */
#define LG_GATE_CNT_DROPPED 1      /* denials whose event did not fit the ring buffer */
#define LG_GATE_CNT_JUDGED 2       /* tagged opens judged */
#define LG_GATE_CNT_MAX 4

struct lg_gate_event {
    unsigned int tgid;
    unsigned int tid;
    unsigned int dev;
    unsigned int why;              /* LG_GATE_WHY_* */
    unsigned long long ino;
    int rule;
    int path_len;                  /* bytes of path (no NUL); may exceed LG_GATE_EV_PATH: truncated */
    char path[LG_GATE_EV_PATH];
};

#endif
