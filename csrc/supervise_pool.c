/* supervise_pool.c: worker threads: one-shot workers and the persistent pools
 * (blocking connects and sends, the open check's openers), and a pool's lanes
 * (one thread pinned per CPU) */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
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

/* A job for fn(arg), counted as a running worker (lg_worker_done uncounts it)
 * before any thread can see it, so lg_sup_run's wait for the workers cannot
 * end while it is queued.  NULL when out of memory (nothing counted). */
static struct lg_job *job_new(struct lg_pool *p, void *(*fn)(void *), void *arg)
{
    struct lg_job *j = malloc(sizeof *j);
    if (!j)
        return NULL;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->s->ring_lock);
    p->s->workers++;
    pthread_mutex_unlock(&p->s->ring_lock);
    return j;
}

/* Queue fn(arg) on the pool; a new thread starts when every thread is busy.
 * Never blocks on a worker.  -errno when no thread exists or can be made
 * (the caller answers the notification itself, failing closed). */
int lg_pool_submit(struct lg_pool *p, void *(*fn)(void *), void *arg)
{
    struct lg_job *j = job_new(p, fn, arg);
    if (!j)
        return -ENOMEM;
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

/* ---- lanes: one pool thread pinned to each CPU --------------------------- */

/* Why: on the 2-vCPU VM a wake-up of a thread on the other CPU costs 20-50 us
 * (an IPI into an idle vCPU), a wake-up on the same CPU a few.  The open
 * check's loop thread runs on the caller's CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
 * and hands the judged open to an opener, which answers with ADDFD (another
 * wake-up of the caller, and of the opener again when the fd is installed).
 * An opener taken from a shared queue runs wherever the scheduler puts it,
 * mostly on the idle CPU: every open then crossed CPUs three times.  A lane is
 * an opener pinned to one CPU; the loop hands a job to the lane of the CPU it
 * runs on, so the whole open stays on the caller's CPU (bench/open_ab.py).
 * A lane runs the pool's init like any pool thread (the openers' Landlock
 * restriction) and takes jobs only once that init succeeded; a busy lane (a
 * FIFO open blocking it) or a missing one sends the job to the shared queue:
 * lanes only choose where a job runs, never whether it is answered. */

static void *lane_main(void *arg)
{
    struct lg_lane *l = arg;
    struct lg_pool *p = l->pool;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(l->cpu, &set);
    int pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
    if (p->init)
        pool_thread_rc = p->init(p->s);
    pthread_mutex_lock(&p->lock);
    /* Unpinned or unrestricted: never handed a job (jobs go to the queue). */
    l->ready = pinned && pool_thread_rc == 0;
    for (;;) {
        while (!l->job && !p->stop)
            pthread_cond_wait(&l->cv, &p->lock);
        if (!l->job)
            break;  /* stopping and nothing handed over */
        struct lg_job *j = l->job;
        l->job = NULL;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);  /* answers its notification itself */
        free(j);
        lg_worker_done(p->s);
        pthread_mutex_lock(&p->lock);
        l->busy = 0;
    }
    l->ready = 0;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Start the lane of l->cpu unless it was started or failed before (p->lock held, or
 * the pool not yet shared).  A lane whose thread cannot be made is not tried again:
 * that CPU's jobs use the queue. */
static void lane_start(struct lg_pool *p, struct lg_lane *l)
{
    if (l->started || l->failed || p->stop)
        return;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setstacksize(&attr, 256 * 1024);
        l->started = pthread_create(&l->tid, &attr, lane_main, l) == 0;
        pthread_attr_destroy(&attr);
    }
    l->failed = !l->started;
}

/* Lanes started with the pool, on a machine with at most this many CPUs to run on:
 * the lanes are made (and restrict themselves) while the context is made, off the
 * launch path (lg_sup_new_begin), so that even a session's first opens go to a ready
 * lane on the caller's CPU.  Made on demand, the first open seen on each CPU paid the
 * thread's creation on the loop and went to the shared queue (issue 19).  A larger
 * machine starts its lanes on demand, as many as the CPUs its sessions run on. */
#define LG_EAGER_LANES 4

/* Give the pool lanes (before its first lg_pool_submit_here).  0 or -errno. */
int lg_pool_lanes(struct lg_pool *p)
{
    struct lg_lane *l = calloc(LG_LANES_MAX, sizeof *l);
    if (!l)
        return -ENOMEM;
    for (int i = 0; i < LG_LANES_MAX; i++) {
        int rc = pthread_cond_init(&l[i].cv, NULL);
        if (rc) {
            while (i-- > 0)
                pthread_cond_destroy(&l[i].cv);
            free(l);
            return -rc;
        }
        l[i].pool = p;
        l[i].cpu = i;
    }
    p->lanes = l;
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0 && CPU_COUNT(&mine) <= LG_EAGER_LANES) {
        pthread_mutex_lock(&p->lock);
        for (int i = 0; i < LG_LANES_MAX; i++)
            if (CPU_ISSET(i, &mine))
                lane_start(p, &l[i]);
        pthread_mutex_unlock(&p->lock);
    }
    return 0;
}

/* Queue fn(arg) on the lane of the CPU this thread runs on when that lane is
 * ready and idle, else on the shared queue (lg_pool_submit).  The first job
 * seen on a CPU starts its lane and goes to the queue: the lane takes jobs
 * once its init has run.  Never blocks on a worker; -errno as lg_pool_submit. */
int lg_pool_submit_here(struct lg_pool *p, void *(*fn)(void *), void *arg)
{
    int cpu = p->lanes ? sched_getcpu() : -1;  /* vDSO: no syscall */
    if (cpu < 0 || cpu >= LG_LANES_MAX)
        return lg_pool_submit(p, fn, arg);
    struct lg_lane *l = &p->lanes[cpu];
    pthread_mutex_lock(&p->lock);
    lane_start(p, l);
    if (!l->ready || l->busy || p->stop) {
        pthread_mutex_unlock(&p->lock);
        return lg_pool_submit(p, fn, arg);
    }
    /* job_new takes ring_lock under p->lock here: that order is taken nowhere
     * the other way round */
    struct lg_job *j = job_new(p, fn, arg);
    if (!j) {
        pthread_mutex_unlock(&p->lock);
        return -ENOMEM;
    }
    l->job = j;
    l->busy = 1;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_signal(&l->cv);  /* after the unlock: see lg_pool_submit */
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
    for (int i = 0; p->lanes && i < LG_LANES_MAX; i++)
        pthread_cond_broadcast(&p->lanes[i].cv);
    int n = p->threads;
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++)
        pthread_join(p->tid[i], NULL);
    for (int i = 0; p->lanes && i < LG_LANES_MAX; i++) {
        if (p->lanes[i].started)
            pthread_join(p->lanes[i].tid, NULL);
        pthread_cond_destroy(&p->lanes[i].cv);
    }
    free(p->lanes);
    p->lanes = NULL;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->lock);
    p->ready = 0;
}


/* ---- the context, made on a thread of its own ----------------------------- */

struct lg_sup_pending {
    pthread_t th;
    int listener_fd;
    const struct lg_tables *tables;  /* kept alive by the caller until lg_sup_free */
    int root_pid;
    int flags;
    int stderr_fd;
    struct lg_sup *ctx;              /* lg_sup_new's result, read after the join */
    char err[LG_ERR_MAX];
};

static void *sup_new_main(void *arg)
{
    struct lg_sup_pending *p = arg;
    p->ctx = lg_sup_new(p->listener_fd, p->tables, p->root_pid, p->flags, p->stderr_fd, p->err,
                        (int)sizeof p->err);
    return NULL;
}

struct lg_sup_pending *lg_sup_new_begin(int listener_fd, const struct lg_tables *tables,
                                        int root_pid, int flags, int stderr_fd, char *err,
                                        int errlen)
{
    struct lg_sup_pending *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, (size_t)errlen, "supervisor context: %s", strerror(ENOMEM));
        return NULL;
    }
    p->listener_fd = listener_fd;
    p->tables = tables;
    p->root_pid = root_pid;
    p->flags = flags;
    p->stderr_fd = stderr_fd;
    /* Joinable, default attributes: lg_sup_new runs its own code and the openers'
     * creation on this stack, as it did on the caller's. */
    int rc = pthread_create(&p->th, NULL, sup_new_main, p);
    if (rc != 0) {
        free(p);
        snprintf(err, (size_t)errlen, "supervisor context: pthread_create: %s", strerror(rc));
        return NULL;
    }
    return p;
}

struct lg_sup *lg_sup_new_wait(struct lg_sup_pending *p, char *err, int errlen)
{
    int rc = pthread_join(p->th, NULL);
    if (rc != 0) {
        /* Only a misuse (a second wait) gets here: the thread may still use p, so it is
         * not freed, and no context is returned (the caller fails closed). */
        snprintf(err, (size_t)errlen, "supervisor context: pthread_join: %s", strerror(rc));
        return NULL;
    }
    struct lg_sup *ctx = p->ctx;
    if (!ctx)
        snprintf(err, (size_t)errlen, "%s", p->err);
    free(p);
    return ctx;
}
