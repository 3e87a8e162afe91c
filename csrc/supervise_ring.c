/* supervise_ring.c: the event ring Python drains (never drops: a full ring blocks the decision)
 * and the counters */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "supervise_int.h"

void lg_count(struct lg_sup *s, int which)
{
    if (which < 0 || which >= LG_COUNT_MAX)
        return;
    pthread_mutex_lock(&s->ring_lock);
    s->counts[which]++;
    pthread_mutex_unlock(&s->ring_lock);
}

/* Append an event; blocks (never drops) while the ring is full, so that every
 * decision reaches the audit trail.  In strict durability an allow waits until
 * Python acknowledged the record (DESIGN §5: on disk before it proceeds). */
int lg_push_event(struct lg_sup *s, const struct lg_event *ev)
{
    pthread_mutex_lock(&s->ring_lock);
    while (s->head - s->tail >= LG_RING_CAP && !s->stopping) {
        s->counts[LG_COUNT_RING_WAITS]++;
        pthread_cond_wait(&s->ring_cv, &s->ring_lock);
    }
    if (s->stopping && s->head - s->tail >= LG_RING_CAP) {
        pthread_mutex_unlock(&s->ring_lock);
        return -ESHUTDOWN;
    }
    int was_empty = s->head == s->tail;
    unsigned long long seq = s->head++;
    struct lg_event *slot = &s->ring[seq % LG_RING_CAP];
    *slot = *ev;
    slot->seq = seq;
    s->counts[LG_COUNT_NOTIFS]++;
    s->counts[ev->result == LG_EFFECT_ALLOW ? LG_COUNT_ALLOW : LG_COUNT_DENY]++;
    if (was_empty) {
        uint64_t one = 1;
        if (write(s->event_fd, &one, sizeof one) < 0)
            s->counts[LG_COUNT_ERRORS]++;
    }
    if (s->strict && ev->result == LG_EFFECT_ALLOW && !s->simulate)
        while (s->acked <= seq && !s->stopping)
            pthread_cond_wait(&s->ring_cv, &s->ring_lock);
    pthread_mutex_unlock(&s->ring_lock);
    return 0;
}

int lg_sup_drain(struct lg_sup *s, struct lg_event *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&s->ring_lock);
    while (n < max && s->tail < s->head) {
        out[n++] = s->ring[s->tail % LG_RING_CAP];
        s->tail++;
    }
    if (n > 0)
        pthread_cond_broadcast(&s->ring_cv);
    pthread_mutex_unlock(&s->ring_lock);
    return n;
}

int lg_sup_ack(struct lg_sup *s, unsigned long long seq)
{
    pthread_mutex_lock(&s->ring_lock);
    if (seq + 1 > s->acked)
        s->acked = seq + 1;
    pthread_cond_broadcast(&s->ring_cv);
    pthread_mutex_unlock(&s->ring_lock);
    return 0;
}

int lg_sup_counts(struct lg_sup *s, unsigned long long *out, int n)
{
    int k = n < LG_COUNT_MAX ? n : LG_COUNT_MAX;
    pthread_mutex_lock(&s->ring_lock);
    for (int i = 0; i < k; i++)
        out[i] = s->counts[i];
    if (k > LG_COUNT_WORKERS)
        out[LG_COUNT_WORKERS] = (unsigned long long)s->workers;
    pthread_mutex_unlock(&s->ring_lock);
    return k;
}

int lg_sup_busy(struct lg_sup *s)
{
    pthread_mutex_lock(&s->ring_lock);
    int w = s->workers;
    pthread_mutex_unlock(&s->ring_lock);
    return w;
}

