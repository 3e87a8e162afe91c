/* supervise_pool.c: worker threads: one-shot workers and the persistent pools
 * (blocking connects and sends, the open check's openers) */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "supervise_int.h"

int lg_spawn_worker(struct lg_sup *s, void *(*fn)(void *), void *arg)
{
    pthread_mutex_lock(&s->ring_lock);
    while (s->workers >= LG_WORKERS_MAX && !s->stopping)
        pthread_cond_wait(&s->ring_cv, &s->ring_lock);
    s->workers++;
    pthread_mutex_unlock(&s->ring_lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t th;
    int rc = pthread_create(&th, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        lg_worker_done(s);
        return -rc;
    }
    return 0;
}

void lg_worker_done(struct lg_sup *s)
{
    pthread_mutex_lock(&s->ring_lock);
    s->workers--;
    pthread_cond_broadcast(&s->ring_cv);
    pthread_mutex_unlock(&s->ring_lock);
}

/* ---- persistent pools ----------------------------------------------------- */

/* The result of this thread's pool init (thread-local, set once by the thread
 * itself, read only by it). */
static __thread int pool_thread_rc;

/* 0 when this pool thread's init succeeded (or it had none), else -errno. */
int lg_pool_thread_ok(void)
{
    return pool_thread_rc;
}

static void *pool_main(void *arg)
{
    struct lg_pool *p = arg;
    if (p->init)
        pool_thread_rc = p->init(p->s);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->lock);
            p->idle--;
        }
        if (!p->head)
            break;  /* stopping and nothing left */
        struct lg_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->pending--;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);  /* answers its notification itself */
        free(j);
        lg_worker_done(p->s);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int lg_pool_init(struct lg_pool *p, struct lg_sup *s, int max, int (*init)(struct lg_sup *s))
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->init = init;
    p->max = max < LG_WORKERS_MAX ? max : LG_WORKERS_MAX;
    int rc = pthread_mutex_init(&p->lock, NULL);
    if (rc)
        return -rc;
    rc = pthread_cond_init(&p->cv, NULL);
    if (rc) {
        pthread_mutex_destroy(&p->lock);
        return -rc;
    }
    p->ready = 1;
    return 0;
}

/* Start one more thread (lock held).  0 or -errno. */
static int pool_add_thread(struct lg_pool *p)
{
    if (p->threads >= p->max)
        return -EAGAIN;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rc = pthread_create(&p->tid[p->threads], &attr, pool_main, p);
    pthread_attr_destroy(&attr);
    if (rc)
        return -rc;
    p->threads++;
    return 0;
}

int lg_pool_grow(struct lg_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int rc = pool_add_thread(p);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Queue fn(arg) on the pool; a new thread starts when every thread is busy.
 * Never blocks on a worker.  -errno when no thread exists or can be made
 * (the caller answers the notification itself, failing closed). */
int lg_pool_submit(struct lg_pool *p, void *(*fn)(void *), void *arg)
{
    struct lg_job *j = malloc(sizeof *j);
    if (!j)
        return -ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->s->ring_lock);
    p->s->workers++;
    pthread_mutex_unlock(&p->s->ring_lock);
    pthread_mutex_lock(&p->lock);
    if (p->pending + 1 > p->idle && p->threads < p->max) {
        int rc = pool_add_thread(p);
        if (rc < 0 && p->threads == 0) {
            pthread_mutex_unlock(&p->lock);
            free(j);
            lg_worker_done(p->s);
            return rc;
        }
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->pending++;
    pthread_mutex_unlock(&p->lock);
    /* Signalled after the unlock: a waiter woken while we still held the lock
     * would wake only to block on it, and be woken a second time by the unlock
     * (two wake-ups, often of an idle CPU, on the open check's critical path).
     * No wake-up is lost: the job is queued before the signal, and a thread that
     * is not yet waiting sees p->head before it waits. */
    pthread_cond_signal(&p->cv);
    return 0;
}

/* Stop and join every thread (their queues are empty: lg_sup_run waited). */
void lg_pool_fini(struct lg_pool *p)
{
    if (!p->ready)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    int n = p->threads;
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++)
        pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->lock);
    p->ready = 0;
}

