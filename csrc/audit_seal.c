/* audit_seal.c: the audit writer's per-entry seal and append (issue 19: batch append
 * >= 100k entries/s).
 *
 * sandbox/audit/canonical.py seal() defines the line: canonical JSON with a placeholder
 * in the one top-level "hash" member; its digest is SHA-256 over the line with that
 * member (and the comma joining it to its neighbour) cut out; the member's value is the
 * digest's hex and then the entry tag's (keyed BLAKE2s-128 of the raw digest).  Python
 * renders the JSON (its C encoder) with an empty placeholder (the encoder escapes every
 * character of a string one by one: 96 of them cost it 0.2 us); this computes the
 * member, writes it between the placeholder's quotes, and appends the line under the
 * trail's flock, in one call instead of the Python path's six (flock, the size, write,
 * flock, and the two digests).  Nothing here decides what goes in the trail: the bytes
 * are Python's, and tests/audit/test_seal_fast.py compares every line with
 * canonical.seal's, and a whole trail with the Python path's.
 *
 * The append keeps the writer's rules (sandbox/audit/trail_io.py, chain.py):
 * - the line is written only while holding the trail's flock, and only if the segment
 *   is still the size the writer last saw: anything appended meanwhile (another landgate
 *   writer, or a line someone else wrote) is the Python path's to adopt or record, and
 *   the line must then be chained after it, so nothing is written here;
 * - a failed or short write is cut back off, so the trail stays verifiable;
 * - the digests are render_digest.c's (SHA-NI when the CPU has it).
 */
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include "audit_seal_api.h"
#include "render_digest.h"
#include "render_json.h"

#define HASH_KEY "\"hash\":\""
#define HASH_KEY_LEN 8
#define MEMBER_LEN 96

int lg_audit_tag_base(const unsigned char *key, int klen, uint32_t base[8])
{
    if (klen < 1 || klen > 32)
        return -EINVAL;
    lg_tag_base(base, key, klen);
    return 0;
}

int lg_audit_seal(const char *line, size_t n, const uint32_t base[8],
                  struct lg_audit_sealed *out)
{
    /* The first "hash":" is the top-level member: inside a JSON string every '"' is
     * escaped, and the writer renames nested keys called hash (canonical.sanitize). */
    const char *k = memmem(line, n, HASH_KEY, HASH_KEY_LEN);
    if (k == NULL)
        return -EINVAL;
    size_t i = (size_t)(k - line);
    size_t end = i + HASH_KEY_LEN + 1; /* past the empty value's closing quote */
    if (end > n || line[end - 1] != '"')
        return -EINVAL;
    /* canonical.hashed_bytes: cut the comma before the member; when it is the first
     * member, the comma after it (or none when it is the only one). */
    size_t cut0 = i, cut1 = end;
    if (i > 0 && line[i - 1] == ',')
        cut0 = i - 1;
    else if (end < n && line[end] == ',')
        cut1 = end + 1;
    struct lg_sha256 s;
    lg_sha256_init(&s);
    lg_sha256_update(&s, (const unsigned char *)line, cut0);
    lg_sha256_update(&s, (const unsigned char *)line + cut1, n - cut1);
    lg_sha256_final(&s, out->digest);
    unsigned char tag[16];
    lg_entry_tag(base, out->digest, tag);
    put_hex(out->member, out->digest, 32);
    put_hex(out->member + 64, tag, 16);
    out->at = i + HASH_KEY_LEN;
    return 0;
}

/* Write every byte of iov[0..cnt) (O_APPEND: a short write continues at the end): 0 or
 * -errno.  A regular file's write is not interrupted by a signal once it has started;
 * EINTR before it did is retried, as Python's os.write does (PEP 475). */
static int write_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO; /* no progress on a non-empty write: never spin */
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* flock, retried on EINTR (a signal while another writer holds the lock): Python's
 * fcntl.flock retries too.  A pending KeyboardInterrupt waits for the lock, which the
 * holder keeps for one append. */
static int flock_retry(int fd, int op)
{
    while (flock(fd, op) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Under the flock: the line is appended only if the segment is `expect` bytes long. */
static int append_locked(int seg_fd, long long expect, const char *line, size_t n,
                         struct lg_audit_sealed *out)
{
    /* The size by lseek(SEEK_END), not fstat: since multigrain timestamps (6.13) a stat
     * marks the inode's ctime as queried, and the next write then takes a fine-grained
     * timestamp and dirties the inode in the journal (6.18, ext4: fstat + write 2.07 us,
     * lseek + write 1.08 us).  The offset it moves does not matter: the segment is
     * O_APPEND, and read with pread. */
    off_t end = lseek(seg_fd, 0, SEEK_END);
    if (end < 0)
        return -errno;
    if ((long long)end != expect)
        return LG_AUDIT_MOVED;
    struct iovec iov[4] = {
        {(void *)line, out->at},
        {out->member, MEMBER_LEN},
        {(void *)(line + out->at), n - out->at},
        {"\n", 1},
    };
    int rc = write_all(seg_fd, iov, 4);
    if (rc < 0) {
        /* Cut any fragment back off (chain.Chain._append does the same).  If even that
         * fails, the write's error still stops the writer, and the next writer's catch-up
         * cuts the torn line and records it (chain.Chain.catch_up). */
        if (ftruncate(seg_fd, (off_t)expect) < 0) {
            /* the write's error is the one to report: it stops the writer either way */
        }
        return rc;
    }
    return 0;
}

int lg_audit_seal_append(int lock_fd, int seg_fd, long long expect, const char *line, size_t n,
                         const uint32_t base[8], struct lg_audit_sealed *out)
{
    if (lg_audit_seal(line, n, base, out) < 0)
        return LG_AUDIT_UNSEALED;
    int rc = flock_retry(lock_fd, LOCK_EX);
    if (rc < 0)
        return rc;
    rc = append_locked(seg_fd, expect, line, n, out);
    int un = flock_retry(lock_fd, LOCK_UN);
    /* An unlock that fails is reported as the Python path reports it (trail_io's
     * finally: the writer fails and stops), whether or not the line was written. */
    return rc < 0 ? rc : un < 0 ? un : rc;
}

/* interior node: SHA-256(0x01 || left || right) */
static void node_hash(const unsigned char *left, const unsigned char *right,
                      unsigned char out[32])
{
    static const unsigned char one = 1;
    struct lg_sha256 s;
    lg_sha256_init(&s);
    lg_sha256_update(&s, &one, 1);
    lg_sha256_update(&s, left, 32);
    lg_sha256_update(&s, right, 32);
    lg_sha256_final(&s, out);
}

int lg_audit_merkle_subtree(const unsigned char *leaves, size_t n, unsigned char out[32])
{
    if (n == 0 || (n & (n - 1)) != 0)
        return -EINVAL;
    /* A binary counter over the leaves: stack[h] waits for its right sibling of height
     * h; n a power of two leaves exactly one node, the root, at the end. */
    unsigned char stack[64][32];
    int height[64];
    int top = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char node[32];
        memcpy(node, leaves + 32 * k, 32);
        int h = 0;
        while (top > 0 && height[top - 1] == h) {
            node_hash(stack[top - 1], node, node);
            top--;
            h++;
        }
        memcpy(stack[top], node, 32);
        height[top++] = h;
    }
    memcpy(out, stack[0], 32);
    return 0;
}
