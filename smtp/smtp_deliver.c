/* smtp/smtp_deliver: accounts lookup per recipient, one pipelined LMTP
 * transaction with the header privacy rewrite streamed into it, then the
 * reply rule:
 *  - any temporary LMTP failure: that 4xx (the client retries; recipients
 *    already delivered may see the message twice, never zero times);
 *  - nothing delivered and Dovecot refused permanently: Dovecot's 5xx
 *    (quota, size);
 *  - otherwise 250, after a bounce for the unknown (or permanently
 *    refused) recipients went to a local sender's INBOX. A remote or null
 *    sender gets no bounce (no remote delivery yet): 550 when nothing was
 *    delivered at all, so the peer bounces; else a log line. */
#include "smtp/smtp_deliver.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <openssl/rand.h>

/* project */
#include "core/accounts/accounts.h"
#include "core/log.h"
#include "smtp/smtp_bounce.h"
#include "filter/rewrite.h"
#include "smtp/smtp_spool.h"

/* The original header section kept for a bounce. */
#define SMTP_DELIVER_HDR_MAX (64 * 1024)
/* A job's arena keeps one chunk of this size across messages: the job's
 * strings, results, the header copy and the LMTP transaction of a
 * message with a few recipients fit in it. */
#define SMTP_DELIVER_ARENA_CHUNK (16 * 1024)
/* Finished jobs kept per worker for the next messages. */
#define SMTP_DELIVER_IDLE_MAX 64
/* Body octets read from a spool file per lmtp_txn_write. */
#define SMTP_DELIVER_READ (32 * 1024)

enum smtp_rcpt_kind {
	SMTP_RCPT_LMTP = 0, /* an account: goes to Dovecot */
	SMTP_RCPT_UNKNOWN,  /* no such account: bounced */
};

/* A job and everything it points to live in its arena (the job struct
 * itself is kept on the worker's idle list between messages). */
struct smtp_deliver_job {
	struct smtp_deliver_env *env;
	struct smtp_deliver_job *next, **pprev;
	struct arena arena;
	uint64_t conn_id;
	smtp_deliver_done_fn *done;
	void *arg;
	struct loop_timer timer; /* completion without LMTP */
	struct lmtp_txn *txn;
	bool bouncing;

	char *sender;    /* LMTP envelope sender ("" = <>) */
	char *mail_from; /* as given */
	char *from_addr;
	unsigned n;
	char **rcpts;
	uint8_t *kind;
	unsigned n_lmtp;
	const char **lmtp_rcpts;
	unsigned *lmtp_idx;      /* lmtp position -> rcpt index */
	struct lmtp_result *res; /* per rcpt */
	uint8_t *hdr;
	size_t hdr_len;
	/* The body after the header section, streamed under LMTP's
	 * back-pressure from a spool file (fd >= 0) or written at once
	 * from memory. */
	int fd;
	uint64_t off, len;
	struct smtp_deliver_reply reply;
};

/* Back to the worker's idle list (or freed): nothing of the message
 * stays allocated. */
static void smtp_deliver_free(struct smtp_deliver_job *j)
{
	struct smtp_deliver_env *env = j->env;

	if (j->pprev != NULL) {
		*j->pprev = j->next;
		if (j->next != NULL)
			j->next->pprev = j->pprev;
	}
	if (j->fd >= 0)
		close(j->fd);
	if (env->n_idle >= SMTP_DELIVER_IDLE_MAX) {
		arena_free(&j->arena);
		free(j);
		return;
	}
	arena_reset(&j->arena);
	j->next = env->idle;
	env->idle = j;
	env->n_idle++;
}

/* A clean job: from the idle list, else a new one. */
static struct smtp_deliver_job *
smtp_deliver_job_get(struct smtp_deliver_env *env)
{
	struct smtp_deliver_job *j = env->idle;
	struct arena a;

	if (j != NULL) {
		env->idle = j->next;
		env->n_idle--;
		a = j->arena;
	} else {
		j = malloc(sizeof(*j));
		if (j == NULL)
			return NULL;
		arena_init_chunk(&a, SMTP_DELIVER_ARENA_CHUNK);
	}
	memset(j, 0, sizeof(*j));
	j->arena = a;
	j->fd = -1;
	return j;
}

static void smtp_deliver_finish(struct smtp_deliver_job *j)
{
	if (j->done != NULL)
		j->done(&j->reply, j->arg);
	smtp_deliver_free(j);
}

static void smtp_deliver_set(struct smtp_deliver_job *j, unsigned code,
			     const char *esc, const char *text)
{
	j->reply.code = code;
	snprintf(j->reply.esc, sizeof(j->reply.esc), "%s", esc);
	snprintf(j->reply.text, sizeof(j->reply.text), "%s", text);
}

static int smtp_deliver_out(void *ctx, const uint8_t *p, size_t n)
{
	return lmtp_txn_write(ctx, p, n);
}

static bool smtp_deliver_is_local(const struct smtp_deliver_env *env,
				  const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && at != addr &&
	       strcasecmp(at + 1, env->mail_domain) == 0;
}

static void smtp_deliver_bounce_done(struct lmtp_txn *t,
				     const struct lmtp_result *r, unsigned n,
				     void *arg);

/* Send the bounce for the failed recipients to the local sender. 0, or
 * <0 (nothing sent; the reply is already set). */
static int smtp_deliver_bounce(struct smtp_deliver_job *j, unsigned delivered)
{
	struct smtp_bounce_rcpt br[64];
	struct smtp_bounce b;
	unsigned char rnd[12];
	char unique[32], to[ACCOUNTS_ADDR_MAX + 1];
	const char *rcpt[1];
	char *msg = NULL;
	size_t len = 0, k = 0;
	int r;

	snprintf(to, sizeof(to), "%s", j->mail_from);
	for (char *p = to; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	for (unsigned i = 0; i < j->n && k < 64; i++) {
		if (j->res[i].code < 500)
			continue;
		br[k].addr = j->rcpts[i];
		br[k].code = j->res[i].code;
		br[k].status = j->res[i].status[0] != '\0' ? j->res[i].status
							   : "5.0.0";
		br[k].text = j->res[i].text;
		k++;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(unique + 2 * i, 3, "%02x", rnd[i]);
	memset(&b, 0, sizeof(b));
	b.mail_domain = j->env->mail_domain;
	b.sender = to;
	b.rcpts = br;
	b.n_rcpts = (unsigned)k;
	b.orig_headers = j->hdr;
	b.orig_headers_len = j->hdr_len;
	b.now = (int64_t)time(NULL);
	b.unique = unique;
	r = smtp_bounce_build(&b, &msg, &len);
	if (r < 0) {
		log_warn("%016" PRIx64 " smtp bounce to=<%s> not built: %s",
			 j->conn_id, to, strerror(-r));
		return r;
	}
	rcpt[0] = to;
	r = lmtp_txn_begin(j->env->lmtp, &j->arena, "", rcpt, 1, (int64_t)len,
			   smtp_deliver_bounce_done, j, &j->txn);
	if (r == 0 && lmtp_txn_write(j->txn, msg, len) == 0)
		lmtp_txn_finish(j->txn);
	free(msg);
	if (r < 0)
		return r;
	j->bouncing = true;
	(void)delivered;
	return 0;
}

static void smtp_deliver_bounce_done(struct lmtp_txn *t,
				     const struct lmtp_result *r, unsigned n,
				     void *arg)
{
	struct smtp_deliver_job *j = arg;
	unsigned delivered = 0;

	(void)t;
	j->txn = NULL;
	for (unsigned i = 0; i < j->n; i++)
		delivered += j->res[i].code >= 200 && j->res[i].code < 300;
	if (n == 1 && r[0].code >= 200 && r[0].code < 300) {
		log_info("%016" PRIx64 " smtp bounce delivered to=<%s>",
			 j->conn_id, j->mail_from);
		events_raise_delivered(j->env->events, j->mail_from, "");
		smtp_deliver_set(j, SMTP_R_QUEUED);
	} else if (delivered == 0) {
		log_warn("%016" PRIx64 " smtp bounce to=<%s> failed: %u %s",
			 j->conn_id, j->mail_from, n ? r[0].code : 0,
			 n ? r[0].text : "");
		smtp_deliver_set(j, SMTP_R_LOCAL_TEMPFAIL);
	} else {
		log_warn("%016" PRIx64 " smtp bounce to=<%s> lost: %u %s",
			 j->conn_id, j->mail_from, n ? r[0].code : 0,
			 n ? r[0].text : "");
		smtp_deliver_set(j, SMTP_R_QUEUED);
	}
	smtp_deliver_finish(j);
}

/* Every recipient has its result in j->res: decide the reply. */
static void smtp_deliver_decide(struct smtp_deliver_job *j)
{
	const struct lmtp_result *temp = NULL, *perm = NULL;
	unsigned delivered = 0, failed = 0;

	for (unsigned i = 0; i < j->n; i++) {
		const struct lmtp_result *r = &j->res[i];

		if (r->code >= 200 && r->code < 300) {
			delivered++;
			log_info("%016" PRIx64 " smtp delivered to=<%s> "
				 "from=<%s>",
				 j->conn_id, j->rcpts[i], j->from_addr);
			events_raise_delivered(j->env->events, j->rcpts[i],
					       j->from_addr);
			continue;
		}
		log_info("%016" PRIx64 " smtp not delivered to=<%s> "
			 "status=%u %s %s",
			 j->conn_id, j->rcpts[i], r->code, r->status, r->text);
		if (r->code < 500) {
			if (temp == NULL)
				temp = r;
			continue;
		}
		failed++;
		if (perm == NULL && j->kind[i] == SMTP_RCPT_LMTP)
			perm = r;
	}
	if (temp != NULL) {
		smtp_deliver_set(j, temp->code, temp->status, temp->text);
	} else if (failed == 0) {
		smtp_deliver_set(j, SMTP_R_QUEUED);
	} else if (delivered == 0 && perm != NULL) {
		smtp_deliver_set(j, perm->code, perm->status, perm->text);
	} else if (j->mail_from[0] != '\0' &&
		   smtp_deliver_is_local(j->env, j->mail_from) &&
		   accounts_exists(j->env->accounts, j->mail_from) == 1) {
		if (smtp_deliver_bounce(j, delivered) == 0)
			return; /* finishes in smtp_deliver_bounce_done */
		smtp_deliver_set(j, delivered == 0 ? 451 : 250,
				 delivered == 0 ? "4.3.0" : "2.0.0",
				 delivered == 0 ? "Local delivery failed, try "
						  "again later"
						: "Ok: queued");
	} else if (delivered == 0) {
		for (unsigned i = 0; i < j->n; i++) {
			if (j->res[i].code >= 500) {
				smtp_deliver_set(j, j->res[i].code,
						 j->res[i].status,
						 j->res[i].text);
				break;
			}
		}
	} else {
		log_warn("%016" PRIx64 " smtp no bounce for failed recipients "
			 "of <%s>: remote delivery not available",
			 j->conn_id, j->mail_from);
		smtp_deliver_set(j, SMTP_R_QUEUED);
	}
	smtp_deliver_finish(j);
}

static void smtp_deliver_lmtp_done(struct lmtp_txn *t,
				   const struct lmtp_result *r, unsigned n,
				   void *arg)
{
	struct smtp_deliver_job *j = arg;

	(void)t;
	j->txn = NULL;
	for (unsigned i = 0; i < n && i < j->n_lmtp; i++)
		j->res[j->lmtp_idx[i]] = r[i];
	smtp_deliver_decide(j);
}

static void smtp_deliver_timer(struct loop_timer *t, void *arg)
{
	struct smtp_deliver_job *j = arg;

	(void)t;
	if (j->reply.code != 0)
		smtp_deliver_finish(j);
	else
		smtp_deliver_decide(j);
}

static char *smtp_deliver_strdup(struct smtp_deliver_job *j, const char *s)
{
	if (s == NULL)
		s = "";
	return arena_strndup(&j->arena, s, strlen(s));
}

/* The body failed on the way (a spool read): the transaction is dropped
 * and the client gets 451. */
static void smtp_deliver_body_failed(struct smtp_deliver_job *j, int err)
{
	log_warn("%016" PRIx64 " smtp spool read error=\"%s\"", j->conn_id,
		 strerror(-err));
	lmtp_txn_abort(&j->txn);
	smtp_deliver_set(j, SMTP_R_LOCAL_TEMPFAIL);
	loop_timer_arm(j->env->loop, &j->timer, 0);
}

/* Feed the spooled body until LMTP says stop (it calls back through
 * smtp_deliver_writable) or the end; then the final ".". Bounded: at
 * most body_high octets wait in LMTP's buffers per transaction. */
static void smtp_deliver_pump(struct smtp_deliver_job *j)
{
	uint8_t chunk[SMTP_DELIVER_READ];
	size_t want;
	ssize_t n;

	while (j->off < j->len && !lmtp_txn_failed(j->txn)) {
		if (lmtp_txn_full(j->txn))
			return;
		want = sizeof(chunk);
		if (want > j->len - j->off)
			want = (size_t)(j->len - j->off);
		do {
			n = pread(j->fd, chunk, want, (off_t)j->off);
		} while (n < 0 && errno == EINTR);
		if (n <= 0) {
			smtp_deliver_body_failed(j, n < 0 ? -errno : -EIO);
			return;
		}
		j->off += (uint64_t)n;
		if (lmtp_txn_write(j->txn, chunk, (size_t)n) < 0)
			break; /* failed: the results say so */
	}
	close(j->fd);
	j->fd = -1;
	lmtp_txn_finish(j->txn);
}

static void smtp_deliver_writable(struct lmtp_txn *t, void *arg)
{
	struct smtp_deliver_job *j = arg;

	(void)t;
	if (j->txn != NULL && j->fd >= 0)
		smtp_deliver_pump(j);
}

int smtp_deliver_start(struct smtp_deliver_env *env, uint64_t conn_id,
		       const struct smtp_delivery *d,
		       smtp_deliver_done_fn *done, void *arg,
		       struct smtp_deliver_job **job_r)
{
	struct smtp_deliver_job *j;
	const uint8_t *hdr, *mem;
	size_t hdr_len;
	uint64_t size;
	bool found;
	int r;

	*job_r = NULL;
	j = smtp_deliver_job_get(env);
	if (j == NULL)
		return -ENOMEM;
	j->env = env;
	j->conn_id = conn_id;
	j->done = done;
	j->arg = arg;
	j->n = d->n_rcpts;
	loop_timer_init(&j->timer, smtp_deliver_timer, j);
	j->sender = smtp_deliver_strdup(j, d->lmtp_sender);
	j->mail_from = smtp_deliver_strdup(j, d->mail_from);
	j->from_addr = smtp_deliver_strdup(j, d->from_addr);
	j->rcpts = arena_zalloc(&j->arena, (j->n + 1) * sizeof(*j->rcpts));
	j->kind = arena_zalloc(&j->arena, (j->n + 1) * sizeof(*j->kind));
	j->lmtp_rcpts =
		arena_zalloc(&j->arena, (j->n + 1) * sizeof(*j->lmtp_rcpts));
	j->lmtp_idx =
		arena_zalloc(&j->arena, (j->n + 1) * sizeof(*j->lmtp_idx));
	j->res = arena_zalloc(&j->arena, (j->n + 1) * sizeof(*j->res));
	if (d->spool != NULL) {
		hdr = smtp_spool_header(d->spool, &hdr_len);
		mem = smtp_spool_mem(d->spool);
		j->len = smtp_spool_size(d->spool);
	} else {
		hdr_len = smtp_spool_header_len(d->msg, d->len, &found);
		hdr = mem = d->msg;
		j->len = d->len;
	}
	j->off = hdr_len;
	j->hdr_len =
		hdr_len > SMTP_DELIVER_HDR_MAX ? SMTP_DELIVER_HDR_MAX : hdr_len;
	j->hdr = arena_alloc(&j->arena, j->hdr_len + 1);
	if (j->sender == NULL || j->mail_from == NULL || j->from_addr == NULL ||
	    j->rcpts == NULL || j->kind == NULL || j->lmtp_rcpts == NULL ||
	    j->lmtp_idx == NULL || j->res == NULL || j->hdr == NULL)
		goto oom;
	memcpy(j->hdr, hdr, j->hdr_len);
	j->next = env->jobs;
	if (env->jobs != NULL)
		env->jobs->pprev = &j->next;
	env->jobs = j;
	j->pprev = &env->jobs;
	*job_r = j;

	for (unsigned i = 0; i < j->n; i++) {
		j->rcpts[i] = smtp_deliver_strdup(j, d->rcpts[i]);
		if (j->rcpts[i] == NULL)
			goto oom_listed;
		r = accounts_exists(env->accounts, j->rcpts[i]);
		if (r < 0) {
			log_warn("%016" PRIx64 " smtp accounts lookup <%s>: "
				 "%s",
				 conn_id, j->rcpts[i], strerror(-r));
			smtp_deliver_set(j, SMTP_R_LOCAL_TEMPFAIL);
			loop_timer_arm(env->loop, &j->timer, 0);
			return 0;
		}
		if (r == 0) {
			j->kind[i] = SMTP_RCPT_UNKNOWN;
			j->res[i].code = 550;
			snprintf(j->res[i].status, sizeof(j->res[i].status),
				 "5.1.1");
			snprintf(j->res[i].text, sizeof(j->res[i].text),
				 "<%s>: Recipient address rejected: User "
				 "unknown",
				 j->rcpts[i]);
			continue;
		}
		j->lmtp_idx[j->n_lmtp] = i;
		j->lmtp_rcpts[j->n_lmtp++] = j->rcpts[i];
	}
	/* The rewrite ends with the header section: the rest is as is. */
	size = rewrite_size(hdr, hdr_len, d->rewrite_flags) + j->len - hdr_len;
	if (env->max_message_size != 0 && size > env->max_message_size) {
		smtp_deliver_set(j, SMTP_R_TOO_BIG);
		loop_timer_arm(env->loop, &j->timer, 0);
		return 0;
	}
	if (j->n_lmtp == 0) {
		loop_timer_arm(env->loop, &j->timer, 0);
		return 0;
	}
	if (mem == NULL) {
		/* Spooled: the job reads the file after the session is
		 * gone, so it holds its own descriptor. */
		j->fd = fcntl(smtp_spool_fd(d->spool), F_DUPFD_CLOEXEC, 0);
		if (j->fd < 0) {
			log_warn("%016" PRIx64 " smtp spool dup: %s", conn_id,
				 strerror(errno));
			smtp_deliver_set(j, SMTP_R_LOCAL_TEMPFAIL);
			loop_timer_arm(env->loop, &j->timer, 0);
			return 0;
		}
	}
	r = lmtp_txn_begin(env->lmtp, &j->arena, j->sender, j->lmtp_rcpts,
			   j->n_lmtp, (int64_t)size, smtp_deliver_lmtp_done, j,
			   &j->txn);
	if (r < 0) {
		log_warn("%016" PRIx64 " smtp lmtp: %s", conn_id, strerror(-r));
		smtp_deliver_set(j, SMTP_R_LOCAL_TEMPFAIL);
		loop_timer_arm(env->loop, &j->timer, 0);
		return 0;
	}
	/* A failure shows up in the results. */
	r = rewrite_headers(hdr, hdr_len, d->rewrite_flags, smtp_deliver_out,
			    j->txn);
	if (mem != NULL) {
		/* In memory (at most the spool threshold, well within
		 * LMTP's 4 x body_high): all of it now. */
		if (r == 0 && j->len > hdr_len)
			(void)lmtp_txn_write(j->txn, mem + hdr_len,
					     (size_t)(j->len - hdr_len));
		lmtp_txn_finish(j->txn);
		return 0;
	}
	lmtp_txn_set_writable(j->txn, smtp_deliver_writable);
	smtp_deliver_pump(j);
	return 0;

oom_listed:
	*job_r = NULL;
oom:
	smtp_deliver_free(j);
	return -ENOMEM;
}

void smtp_deliver_detach(struct smtp_deliver_job *job)
{
	if (job != NULL)
		job->done = NULL;
}

void smtp_deliver_env_drop(struct smtp_deliver_env *env)
{
	struct smtp_deliver_job *j;

	while (env->jobs != NULL) {
		j = env->jobs;
		loop_timer_disarm(env->loop, &j->timer);
		smtp_deliver_free(j);
	}
	while ((j = env->idle) != NULL) {
		env->idle = j->next;
		arena_free(&j->arena);
		free(j);
	}
	env->n_idle = 0;
}
