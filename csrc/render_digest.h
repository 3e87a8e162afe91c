/* render_digest.h: the digests of csrc/render_event.c's trail lines (render_digest.c):
 * SHA-256 (with the CPU's SHA extensions when it has them) and the entry tag, keyed
 * BLAKE2s-128 personalised "lgentry2" (sandbox/audit/canonical.py entry_tag). */
#ifndef LG_RENDER_DIGEST_H
#define LG_RENDER_DIGEST_H
#include <stddef.h>
#include <stdint.h>

struct lg_sha256 {
    void (*compress)(uint32_t h[8], const unsigned char *p);
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
};

void lg_sha256_init(struct lg_sha256 *s);
void lg_sha256_update(struct lg_sha256 *s, const unsigned char *p, size_t n);
void lg_sha256_final(struct lg_sha256 *s, unsigned char out[32]);
/* The keyed BLAKE2s state after the key block (canonical.tag_base): key 1..32 bytes. */
void lg_tag_base(uint32_t h[8], const unsigned char *key, int klen);
/* canonical.entry_tag: keyed BLAKE2s-128 of a raw digest, from lg_tag_base's state. */
void lg_entry_tag(const uint32_t base[8], const unsigned char digest[32], unsigned char out[16]);

#endif
