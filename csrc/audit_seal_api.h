/* audit_seal_api.h: the audit writer's per-entry seal and append (csrc/audit_seal.c),
 * part of sandbox._supervise (csrc/build.py adds this header to its cdef).  Python
 * renders the line (sandbox/audit/canonical.py: canonical JSON with the hash member's
 * placeholder); these fill the member in exactly as canonical.seal does, and append
 * the line under the trail's flock (sandbox/audit/native.py). */
#ifndef LG_AUDIT_SEAL_API_H
#define LG_AUDIT_SEAL_API_H
#include <stddef.h>
#include <stdint.h>

/* lg_audit_seal_append: the segment is no longer `expect` bytes long (another writer
 * appended or rotated, or someone else wrote to it): nothing written. */
#define LG_AUDIT_MOVED 1
/* lg_audit_seal_append: the line has no hash member to fill in (a writer bug): nothing
 * written. */
#define LG_AUDIT_UNSEALED 2

struct lg_audit_sealed {
    unsigned char digest[32]; /* SHA-256 of the line without its hash member */
    char member[96];          /* the member's value: digest hex, then the tag's hex */
    size_t at;                /* where the value goes: between the empty value's quotes */
};

/* The keyed BLAKE2s state of the entry tags (canonical.tag_base) for a key of klen
 * bytes: 0, or -EINVAL unless 1 <= klen <= 32 (BLAKE2s's key sizes). */
int lg_audit_tag_base(const unsigned char *key, int klen, uint32_t base[8]);
/* Seal line[0..n) (one entry's canonical JSON, no newline, whose first "hash":" member
 * is the empty string): 0 with the digest, the member and where it goes in *out (the
 * sealed line is line[0..at), member, line[at..n)), or -EINVAL when the line has no
 * such member. */
int lg_audit_seal(const char *line, size_t n, const uint32_t base[8],
                  struct lg_audit_sealed *out);
/* Seal line[0..n) as lg_audit_seal and, holding flock(lock_fd), append it and '\n' to
 * seg_fd (O_APPEND) if the segment is still `expect` bytes long: 0 (written),
 * LG_AUDIT_MOVED or LG_AUDIT_UNSEALED (not written), or -errno.  A failed or short write is cut back to
 * `expect`, so no fragment stays in the trail (an unlock that fails after a good write
 * is -errno too: the line is then whole in the trail, and the writer stops). */
int lg_audit_seal_append(int lock_fd, int seg_fd, long long expect, const char *line, size_t n,
                         const uint32_t base[8], struct lg_audit_sealed *out);
/* The root of the complete Merkle subtree over n leaves of 32 bytes (n a power of two):
 * interior nodes SHA-256(0x01 || left || right), as sandbox/audit/merkle.py builds
 * them.  0, or -EINVAL when n is not a power of two. */
int lg_audit_merkle_subtree(const unsigned char *leaves, size_t n, unsigned char out[32]);

#endif
