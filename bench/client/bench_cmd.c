/* bench/client/bench_cmd: `ringmail bench`, the modes and options.
 *
 *   connect     TLS connect and login-with-account-creation timings of
 *               SMTP 465 and IMAP 993 (cmdeploy bench's first four rows)
 *   submit      submission only: C concurrent clients submit N messages
 *               (250 after delivery), messages/s and DATA -> 250 times
 *   latency     end to end: the recipient idles (IMAP IDLE), the sender
 *               submits; 250 -> EXISTS and 250 -> FETCHed, one message
 *               at a time, over N messages
 *   throughput  M sender/recipient pairs for D seconds: messages/s
 *               counted at the recipients, the never-seen ones lost
 *   all         connect, latency and throughput
 *
 * Every phase is bounded in count and in time (--timeout); sessions and
 * waits have I/O deadlines. The relay's per-sender rate limit is read
 * from its 450 replies: senders rotate over several fresh accounts and
 * pace themselves when all are limited, and the output says so. */
#include "bench/client/bench_client.h"

/* system */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* project */

#define BENCH_MAX_CLIENTS 1000
#define BENCH_MAX_PAIRS   200
#define BENCH_MAX_N       1000000
#define BENCH_MSG_CAP     (1 << 20)
#define BENCH_PAIR_MSGS   100000 /* per pair in throughput mode */

struct bench_opts {
	const char *host, *domain, *mode;
	uint16_t smtps_port, submission_port, imaps_port;
	bool starttls;   /* submit on 587 + STARTTLS */
	bool imap_plain; /* IMAP without TLS (a plain test listener) */
	bool insecure, json, no_imap;
	unsigned n, connect_n, pairs, clients, localpart_len;
	unsigned burst, per_minute, senders, size;
	double duration, timeout, msg_timeout;
};

/* Timing rows and plain figures of one run, printed at the end. */
#define BENCH_MAX_ROWS 24
struct bench_row {
	const char *name;
	struct bench_samples s;
	unsigned errors;
	bool signed_ms; /* may be negative (see README) */
};
struct bench_fig {
	const char *name;
	double v;
	const char *unit;
};

struct bench_run {
	struct bench_opts o;
	struct bench_target t;
	struct bench_pgp pgp;
	char run_id[9];
	int64_t deadline; /* the whole run */
	pthread_mutex_t mu;
	struct bench_row rows[BENCH_MAX_ROWS];
	unsigned nrows;
	struct bench_fig figs[64];
	unsigned nfigs;
	char notes[8][240];
	unsigned nnotes;
	char first_error[240];
	atomic_uint rate_limited;
	atomic_llong paced_ns;
	atomic_bool pacing_said;
	atomic_bool setup_failed; /* an account could not be created */
};

/* ---- results ---- */

static struct bench_row *bench_row(struct bench_run *r, const char *name)
{
	for (unsigned i = 0; i < r->nrows; i++) {
		if (strcmp(r->rows[i].name, name) == 0)
			return &r->rows[i];
	}
	if (r->nrows == BENCH_MAX_ROWS)
		abort();
	r->rows[r->nrows].name = name;
	return &r->rows[r->nrows++];
}

static void bench_add(struct bench_run *r, const char *name, int64_t ns)
{
	pthread_mutex_lock(&r->mu);
	bench_samples_add(&bench_row(r, name)->s, ns);
	pthread_mutex_unlock(&r->mu);
}

static void bench_error(struct bench_run *r, const char *name, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));
static void bench_error(struct bench_run *r, const char *name, const char *fmt,
			...)
{
	va_list ap;

	pthread_mutex_lock(&r->mu);
	bench_row(r, name)->errors++;
	if (r->first_error[0] == '\0') {
		int n = snprintf(r->first_error, sizeof(r->first_error),
				 "%s: ", name);

		va_start(ap, fmt);
		if (n > 0 && (size_t)n < sizeof(r->first_error))
			vsnprintf(r->first_error + n,
				  sizeof(r->first_error) - (size_t)n, fmt, ap);
		va_end(ap);
		fprintf(stderr, "bench: %s\n", r->first_error);
	}
	pthread_mutex_unlock(&r->mu);
}

static void bench_fig(struct bench_run *r, const char *name, double v,
		      const char *unit)
{
	if (r->nfigs < sizeof(r->figs) / sizeof(r->figs[0]))
		r->figs[r->nfigs++] = (struct bench_fig){name, v, unit};
}

static void bench_note(struct bench_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bench_note(struct bench_run *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->mu);
	if (r->nnotes < sizeof(r->notes) / sizeof(r->notes[0])) {
		va_start(ap, fmt);
		vsnprintf(r->notes[r->nnotes], sizeof(r->notes[0]), fmt, ap);
		va_end(ap);
		fprintf(stderr, "bench: %s\n", r->notes[r->nnotes]);
		r->nnotes++;
	}
	pthread_mutex_unlock(&r->mu);
}

static double bench_ms(int64_t ns)
{
	return (double)ns / 1e6;
}

static void bench_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void bench_print(struct bench_run *r)
{
	FILE *f = stdout;

	for (unsigned i = 0; i < r->nrows; i++)
		bench_samples_sort(&r->rows[i].s);
	if (r->o.json) {
		fprintf(f, "{\"host\":");
		bench_json_str(f, r->o.host);
		fprintf(f, ",\"domain\":");
		bench_json_str(f, r->o.domain);
		fprintf(f, ",\"mode\":");
		bench_json_str(f, r->o.mode);
		fprintf(f,
			",\"options\":{\"n\":%u,\"connect_n\":%u,\"clients\":%"
			"u,"
			"\"pairs\":%u,\"duration_s\":%g,\"submission_port\":%u,"
			"\"starttls\":%s,\"imap_port\":%u,\"message_octets\":%"
			"zu}",
			r->o.n, r->o.connect_n, r->o.clients, r->o.pairs,
			r->o.duration,
			r->o.starttls ? r->o.submission_port : r->o.smtps_port,
			r->o.starttls ? "true" : "false", r->o.imaps_port,
			r->pgp.body_len);
		fprintf(f, ",\"timings_ms\":{");
		for (unsigned i = 0; i < r->nrows; i++) {
			const struct bench_row *w = &r->rows[i];

			fprintf(f, "%s\"%s\":{\"n\":%zu,\"errors\":%u,",
				i ? "," : "", w->name, w->s.n, w->errors);
			fprintf(f,
				"\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
				"\"p99\":%.3f,\"max\":%.3f}",
				bench_ms(bench_samples_q(&w->s, 0.0)),
				bench_ms(bench_samples_q(&w->s, 0.5)),
				bench_ms(bench_samples_q(&w->s, 0.9)),
				bench_ms(bench_samples_q(&w->s, 0.99)),
				bench_ms(bench_samples_q(&w->s, 1.0)));
		}
		fprintf(f, "},\"figures\":{");
		for (unsigned i = 0; i < r->nfigs; i++)
			fprintf(f, "%s\"%s\":%.6g", i ? "," : "",
				r->figs[i].name, r->figs[i].v);
		fprintf(f, "},\"notes\":[");
		for (unsigned i = 0; i < r->nnotes; i++) {
			fprintf(f, "%s", i ? "," : "");
			bench_json_str(f, r->notes[i]);
		}
		fprintf(f, "],\"first_error\":");
		if (r->first_error[0])
			bench_json_str(f, r->first_error);
		else
			fprintf(f, "null");
		fprintf(f, "}\n");
		return;
	}
	fprintf(f, "ringmail bench: host %s, domain %s, mode %s\n\n", r->o.host,
		r->o.domain, r->o.mode);
	if (r->nrows > 0) {
		fprintf(f, "%-28s %7s %6s %9s %9s %9s %9s\n", "timing (ms)",
			"n", "errors", "p50", "p90", "p99", "max");
		for (unsigned i = 0; i < r->nrows; i++) {
			const struct bench_row *w = &r->rows[i];

			fprintf(f, "%-28s %7zu %6u %9.2f %9.2f %9.2f %9.2f\n",
				w->name, w->s.n, w->errors,
				bench_ms(bench_samples_q(&w->s, 0.5)),
				bench_ms(bench_samples_q(&w->s, 0.9)),
				bench_ms(bench_samples_q(&w->s, 0.99)),
				bench_ms(bench_samples_q(&w->s, 1.0)));
		}
		fprintf(f, "\n");
	}
	for (unsigned i = 0; i < r->nfigs; i++)
		fprintf(f, "%-28s %12.2f %s\n", r->figs[i].name, r->figs[i].v,
			r->figs[i].unit);
	for (unsigned i = 0; i < r->nnotes; i++)
		fprintf(f, "%snote: %s\n", i == 0 ? "\n" : "", r->notes[i]);
	if (r->first_error[0])
		fprintf(f, "first error: %s\n", r->first_error);
}

/* ---- senders: rotation over fresh accounts, pacing ---- */

struct bench_sender {
	struct bench_run *run;
	struct bench_account *acc;
	unsigned nacc, cur;
	int authed; /* index of the account the session is logged in as */
	struct bench_smtp smtp;
	uint8_t *msg;
	unsigned sent_ok, failed, io_errors;
	int last_code;
};

static int bench_sender_init(struct bench_sender *s, struct bench_run *r,
			     unsigned nacc)
{
	memset(s, 0, sizeof(*s));
	s->run = r;
	s->nacc = nacc ? nacc : 1;
	s->authed = -1;
	s->acc = calloc(s->nacc, sizeof(*s->acc));
	s->msg = malloc(BENCH_MSG_CAP);
	if (s->acc == NULL || s->msg == NULL)
		return -1;
	for (unsigned i = 0; i < s->nacc; i++)
		bench_account_make(&s->acc[i], r->o.domain, r->o.localpart_len);
	return 0;
}

static void bench_sender_free(struct bench_sender *s)
{
	if (s->authed >= 0 || s->smtp.open)
		bench_smtp_quit(&s->smtp);
	free(s->acc);
	free(s->msg);
	s->acc = NULL;
	s->msg = NULL;
}

static uint16_t bench_submit_port(const struct bench_opts *o)
{
	return o->starttls ? o->submission_port : o->smtps_port;
}

static int64_t bench_interval_ns(const struct bench_opts *o)
{
	return 60000000000LL / (o->per_minute ? o->per_minute : 60);
}

/* Open a session logged in as @a: the account is created by this login
 * if new. Timings go to the rows named by @row_connect/@row_login. 0 or
 * -1. */
static int bench_smtp_login(struct bench_run *r, struct bench_smtp *smtp,
			    const struct bench_account *a,
			    const char *row_connect, const char *row_login)
{
	int64_t t0 = bench_now_ns(), tg = 0;
	int code;

	if (bench_smtp_open(smtp, &r->t, bench_submit_port(&r->o),
			    r->o.starttls, &tg) != 0) {
		bench_error(r, row_login ? row_login : "smtp_login", "%s",
			    smtp->c.err);
		return -1;
	}
	if (row_connect != NULL)
		bench_add(r, row_connect, tg);
	code = bench_smtp_auth(smtp, a->addr, a->pass);
	if (code != 235) {
		bench_error(r, row_login ? row_login : "smtp_login",
			    "AUTH %s: %s", a->addr,
			    code < 0 ? smtp->c.err : smtp->last);
		bench_smtp_quit(smtp);
		return -1;
	}
	if (row_login != NULL)
		bench_add(r, row_login, bench_now_ns() - t0);
	return 0;
}

/* Create @a by a first login (3 tries: a failed try is counted as an
 * error of its row), timing it. 0 or -1. */
static int bench_account_create(struct bench_run *r,
				const struct bench_account *a)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct bench_smtp smtp;

		if (bench_now_ns() > r->deadline)
			return -1;
		if (bench_smtp_login(r, &smtp, a, "smtp_tls_connect",
				     "smtp_login_new") == 0) {
			bench_smtp_quit(&smtp);
			return 0;
		}
	}
	return -1;
}

/* Create every account of @s. */
static int bench_sender_create(struct bench_sender *s)
{
	for (unsigned i = 0; i < s->nacc; i++) {
		if (bench_account_create(s->run, &s->acc[i]) != 0)
			return -1;
	}
	return 0;
}

/* The account to send the next message as: the current one while it has
 * cells left, else the next one that has, else the one that refills
 * first, after waiting for it (pacing). */
static struct bench_account *bench_sender_pick(struct bench_sender *s,
					       int64_t deadline)
{
	const struct bench_opts *o = &s->run->o;
	int64_t now = bench_now_ns(), iv = bench_interval_ns(o);
	unsigned best = s->cur;

	for (unsigned k = 0; k < s->nacc; k++) {
		unsigned i = (s->cur + k) % s->nacc;
		struct bench_account *a = &s->acc[i];

		if (a->next_ok != 0 && a->next_ok <= now) {
			/* GCRA: one cell per interval since next_ok. */
			int64_t cells = (now - a->next_ok) / iv + 1;

			a->sent = cells >= a->sent ? 0
						   : a->sent - (unsigned)cells;
			a->next_ok = 0;
		}
		if (a->next_ok == 0 && a->sent < o->burst) {
			s->cur = i;
			return a;
		}
		if (s->acc[i].next_ok < s->acc[best].next_ok)
			best = i;
	}
	/* All limited: pace. */
	if (s->acc[best].next_ok > deadline)
		return NULL;
	if (!atomic_exchange(&s->run->pacing_said, true))
		bench_note(s->run,
			   "every sender account of a client has used its "
			   "burst or got a 450: pacing to the relay's rate "
			   "limit (%u/min per sender, burst %u assumed until "
			   "a 450 says otherwise; --senders adds accounts)",
			   o->per_minute, o->burst);
	atomic_fetch_add(&s->run->paced_ns, s->acc[best].next_ok - now);
	bench_sleep_until(s->acc[best].next_ok);
	s->cur = best;
	return bench_sender_pick(s, deadline);
}

/* Submit one message to @rcpt with Message-ID <@msgid>. 0 accepted
 * (*@t_250_r set), -1 failed, 1 out of time. */
static int bench_sender_send(struct bench_sender *s, const char *rcpt,
			     const char *msgid, int64_t deadline,
			     int64_t *t_250_r)
{
	struct bench_run *r = s->run;
	const struct bench_opts *o = &r->o;
	unsigned io_fail = 0;

	for (int attempt = 0; attempt < 1000; attempt++) {
		struct bench_account *a;
		struct bench_send_result res;
		size_t len;
		int rc;

		if (bench_now_ns() > deadline)
			return 1;
		a = bench_sender_pick(s, deadline);
		if (a == NULL)
			return 1;
		if (s->authed != (int)s->cur) {
			if (s->authed >= 0)
				bench_smtp_quit(&s->smtp);
			s->authed = -1;
			if (bench_smtp_login(r, &s->smtp, a, NULL, NULL) != 0) {
				if (++io_fail >= 3)
					return -1;
				continue;
			}
			s->authed = (int)s->cur;
		}
		len = bench_pgp_message(&r->pgp, a->addr, rcpt, msgid, s->msg,
					BENCH_MSG_CAP);
		rc = bench_smtp_send(&s->smtp, a->addr, rcpt, s->msg, len,
				     &res);
		if (rc == 0) {
			*t_250_r = res.t_done;
			bench_add(r, "smtp_submit", res.t_done - res.t_data);
			s->sent_ok++;
			if (++a->sent >= o->burst)
				a->next_ok = res.t_done + bench_interval_ns(o);
			return 0;
		}
		if (rc < 0)
			s->authed = -1; /* the session is closed */
		if (res.rate_limit) {
			atomic_fetch_add(&r->rate_limited, 1);
			a->sent = o->burst;
			a->next_ok =
				bench_now_ns() +
				(res.retry_ms >= 0 ? res.retry_ms * 1000000LL
						   : bench_interval_ns(o));
			continue;
		}
		if (res.code < 0) {
			s->io_errors++;
			bench_error(r, "smtp_submit", "%s", s->smtp.c.err);
			if (++io_fail >= 3)
				return -1;
			continue;
		}
		s->last_code = res.code;
		bench_error(r, "smtp_submit", "refused at %c: %s", res.stage,
			    s->smtp.last);
		return -1;
	}
	return -1;
}

static unsigned bench_div_up(unsigned a, unsigned b)
{
	return b ? (a + b - 1) / b : a;
}

/* ---- mode connect ---- */

static void bench_mode_connect(struct bench_run *r)
{
	const struct bench_opts *o = &r->o;

	for (unsigned i = 0; i < o->connect_n; i++) {
		struct bench_smtp smtp;
		struct bench_account a;
		int64_t tg;

		if (bench_now_ns() > r->deadline)
			break;
		if (bench_smtp_open(&smtp, &r->t, bench_submit_port(o),
				    o->starttls, &tg) == 0) {
			bench_add(r, "smtp_tls_connect", tg);
			bench_smtp_quit(&smtp);
		} else {
			bench_error(r, "smtp_tls_connect", "%s", smtp.c.err);
		}
		bench_account_make(&a, o->domain, o->localpart_len);
		if (bench_smtp_login(r, &smtp, &a, NULL, "smtp_login_new") == 0)
			bench_smtp_quit(&smtp);
	}
	if (o->no_imap)
		return;
	for (unsigned i = 0; i < o->connect_n; i++) {
		struct bench_imap m;
		struct bench_account a;
		int64_t t0, tg;
		int rc;

		if (bench_now_ns() > r->deadline)
			break;
		if (bench_imap_open(&m, &r->t, o->imaps_port, !o->imap_plain,
				    &tg) == 0) {
			bench_add(r, "imap_tls_connect", tg);
			bench_imap_logout(&m);
		} else {
			bench_error(r, "imap_tls_connect", "%s", m.c.err);
		}
		bench_account_make(&a, o->domain, o->localpart_len);
		t0 = bench_now_ns();
		if (bench_imap_open(&m, &r->t, o->imaps_port, !o->imap_plain,
				    NULL) != 0) {
			bench_error(r, "imap_login_new", "%s", m.c.err);
			continue;
		}
		rc = bench_imap_login(&m, a.addr, a.pass);
		if (rc == 1)
			bench_add(r, "imap_login_new", bench_now_ns() - t0);
		else
			bench_error(r, "imap_login_new", "%s", m.c.err);
		bench_imap_logout(&m);
	}
}

/* ---- mode submit ---- */

struct bench_client {
	struct bench_run *run;
	unsigned idx, quota;
	struct bench_sender snd;
	struct bench_account *rcpts; /* shared */
	unsigned nrcpt;
	pthread_barrier_t *bar;
	bool setup_ok;
	pthread_t th;
};

static void *bench_submit_thread(void *arg)
{
	struct bench_client *c = arg;
	struct bench_run *r = c->run;
	char msgid[200];

	/* Set-up: this client's share of the recipients, its senders. */
	c->setup_ok = true;
	for (unsigned j = c->idx; j < c->nrcpt; j += r->o.clients) {
		if (bench_account_create(r, &c->rcpts[j]) != 0) {
			c->setup_ok = false;
			break;
		}
	}
	if (c->setup_ok && bench_sender_create(&c->snd) != 0)
		c->setup_ok = false;
	pthread_barrier_wait(c->bar);
	pthread_barrier_wait(c->bar); /* the timer starts */
	/* Without all recipients, messages would bounce: nobody sends. */
	if (!c->setup_ok || atomic_load(&r->setup_failed))
		return NULL;
	for (unsigned k = 0; k < c->quota; k++) {
		const char *rcpt = c->rcpts[(c->idx + k) % c->nrcpt].addr;
		int64_t t250;
		int rc;

		snprintf(msgid, sizeof(msgid), "rmb-%s-%u-%u@%s", r->run_id,
			 c->idx, k, r->o.domain);
		rc = bench_sender_send(&c->snd, rcpt, msgid, r->deadline,
				       &t250);
		if (rc == 1)
			break;
		if (rc < 0)
			c->snd.failed++;
	}
	if (c->snd.authed >= 0)
		bench_smtp_quit(&c->snd.smtp);
	c->snd.authed = -1;
	return NULL;
}

static void bench_mode_submit(struct bench_run *r)
{
	const struct bench_opts *o = &r->o;
	unsigned C = o->clients, nrcpt = C < 10 ? C : 10;
	struct bench_client *cl = calloc(C, sizeof(*cl));
	struct bench_account *rcpts = calloc(nrcpt, sizeof(*rcpts));
	pthread_barrier_t bar;
	unsigned ok = 0, failed = 0, started = 0, setup_failed = 0, accts = 0;
	int64_t t0, t1, ts;

	if (cl == NULL || rcpts == NULL) {
		bench_error(r, "smtp_submit", "out of memory");
		goto out;
	}
	for (unsigned j = 0; j < nrcpt; j++)
		bench_account_make(&rcpts[j], o->domain, o->localpart_len);
	pthread_barrier_init(&bar, NULL, C + 1);
	for (unsigned i = 0; i < C; i++) {
		struct bench_client *c = &cl[i];

		c->run = r;
		c->idx = i;
		c->quota = o->n / C + (i < o->n % C);
		c->rcpts = rcpts;
		c->nrcpt = nrcpt;
		c->bar = &bar;
		/* Enough fresh senders for the burst each allows, plus
		 * one: no pacing unless the relay is stricter. */
		if (bench_sender_init(&c->snd, r,
				      bench_div_up(c->quota, o->burst) + 1) !=
		    0)
			abort();
		accts += c->snd.nacc;
	}
	fprintf(stderr,
		"bench: submit: creating %u accounts (%u senders, %u "
		"recipients) with %u clients\n",
		accts + nrcpt, accts, nrcpt, C);
	ts = bench_now_ns();
	for (unsigned i = 0; i < C; i++) {
		if (pthread_create(&cl[i].th, NULL, bench_submit_thread,
				   &cl[i]) != 0)
			abort();
		started++;
	}
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < C; i++) {
		if (!cl[i].setup_ok)
			atomic_store(&r->setup_failed, true);
	}
	t0 = bench_now_ns();
	bench_fig(r, "setup_s", bench_ms(t0 - ts) / 1000, "s");
	fprintf(stderr, "bench: submit: %u messages, %u clients\n", o->n, C);
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < started; i++)
		pthread_join(cl[i].th, NULL);
	t1 = bench_now_ns();
	for (unsigned i = 0; i < C; i++) {
		ok += cl[i].snd.sent_ok;
		failed += cl[i].snd.failed;
		setup_failed += !cl[i].setup_ok;
		bench_sender_free(&cl[i].snd);
	}
	pthread_barrier_destroy(&bar);
	bench_fig(r, "clients", C, "");
	bench_fig(r, "messages", o->n, "");
	bench_fig(r, "submitted", ok, "accepted with 250");
	bench_fig(r, "failed", failed, "");
	if (setup_failed) {
		bench_fig(r, "clients_failed_setup", setup_failed, "");
		bench_note(r, "account creation failed: nothing was sent");
	}
	bench_fig(r, "submit_phase_s", bench_ms(t1 - t0) / 1000, "s");
	bench_fig(r, "submitted_per_s",
		  t1 > t0 ? ok / ((double)(t1 - t0) / 1e9) : 0, "messages/s");
	bench_fig(r, "sender_accounts", accts, "");
out:
	free(cl);
	free(rcpts);
}

/* ---- modes latency and throughput: pairs ---- */

struct bench_msg {
	int64_t t250, texists, tfetch;
	bool sent, seen;
};

struct bench_pair {
	struct bench_run *run;
	unsigned idx, quota; /* quota: messages (latency) */
	bool lockstep;       /* latency: one message at a time */
	int64_t send_until;  /* throughput: stop sending then */
	struct bench_sender snd;
	struct bench_account rcpt;
	struct bench_msg *msgs;
	unsigned cap, nsent, nseen, dup;
	int64_t last_seen;
	bool rcpt_ready, rcpt_gone, snd_done;
	int64_t t_exists; /* of the EXISTS being fetched */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_barrier_t *bar;
	bool setup_ok;
	pthread_t ts, tr;
};

static void bench_pair_on_msg(void *ctx, const uint8_t *msg, size_t len,
			      int64_t t_read)
{
	struct bench_pair *p = ctx;
	char prefix[40], id[200];
	unsigned pi, seq;

	snprintf(prefix, sizeof(prefix), "rmb-%s-", p->run->run_id);
	if (bench_msgid_find(msg, len, prefix, id, sizeof(id)) < 0 ||
	    sscanf(id + strlen(prefix), "%u-%u@", &pi, &seq) != 2 ||
	    pi != p->idx || seq >= p->cap)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->msgs[seq].seen) {
		p->dup++;
	} else {
		p->msgs[seq].seen = true;
		p->msgs[seq].texists = p->t_exists;
		p->msgs[seq].tfetch = t_read;
		p->nseen++;
		p->last_seen = t_read;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Should the recipient stop? (all sent messages seen after the sender is
 * done, or the drain time is over) */
static bool bench_pair_rcpt_stop(struct bench_pair *p, int64_t *drain_until)
{
	bool stop;

	pthread_mutex_lock(&p->mu);
	if (p->snd_done && *drain_until == 0)
		*drain_until =
			bench_now_ns() + (int64_t)(p->run->o.msg_timeout * 1e9);
	stop = p->snd_done &&
	       (p->nseen >= p->nsent || bench_now_ns() > *drain_until);
	pthread_mutex_unlock(&p->mu);
	return stop || bench_now_ns() > p->run->deadline;
}

static void *bench_pair_rcpt_thread(void *arg)
{
	struct bench_pair *p = arg;
	struct bench_run *r = p->run;
	const struct bench_opts *o = &r->o;
	struct bench_imap m;
	int64_t t0 = bench_now_ns(), tg, drain_until = 0;
	long fetched = 0;
	bool ok = false;

	if (bench_imap_open(&m, &r->t, o->imaps_port, !o->imap_plain, &tg) !=
	    0) {
		bench_error(r, "imap_tls_connect", "%s", m.c.err);
		goto ready;
	}
	bench_add(r, "imap_tls_connect", tg);
	if (bench_imap_login(&m, p->rcpt.addr, p->rcpt.pass) != 1) {
		bench_error(r, "imap_login", "%s", m.c.err);
		goto ready;
	}
	bench_add(r, "imap_login", bench_now_ns() - t0);
	if (bench_imap_select(&m) != 1 || bench_imap_idle(&m) != 1) {
		bench_error(r, "imap_idle", "%s", m.c.err);
		goto ready;
	}
	fetched = m.exists; /* a fresh account: 0 */
	ok = true;
ready:
	pthread_mutex_lock(&p->mu);
	p->rcpt_ready = true;
	p->rcpt_gone = !ok;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	while (ok && !bench_pair_rcpt_stop(p, &drain_until)) {
		long to;

		if (m.exists <= fetched) {
			long e = bench_imap_idle_wait(&m, bench_now_ns() +
								  200000000);

			if (e == BENCH_CONN_TIMEOUT)
				continue;
			if (e < 0) {
				bench_error(r, "imap_idle", "%s", m.c.err);
				break;
			}
			if (bench_imap_done(&m) != 1) {
				bench_error(r, "imap_idle", "DONE: %s",
					    m.c.err);
				break;
			}
		}
		/* Everything announced so far, also during DONE or a
		 * FETCH, before idling again. */
		while (ok && m.exists > fetched) {
			p->t_exists = m.exists_t;
			to = m.exists;
			if (bench_imap_fetch(&m, fetched + 1, to,
					     bench_pair_on_msg, p) != 1) {
				bench_error(r, "imap_fetch", "%s", m.c.err);
				ok = false;
			}
			fetched = to;
		}
		if (ok && bench_imap_idle(&m) != 1) {
			bench_error(r, "imap_idle", "%s", m.c.err);
			break;
		}
	}
	if (m.open)
		bench_imap_logout(&m);
	pthread_mutex_lock(&p->mu);
	p->rcpt_gone = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void *bench_pair_send_thread(void *arg)
{
	struct bench_pair *p = arg;
	struct bench_run *r = p->run;
	char msgid[200];

	/* The recipient's account too, by an SMTP login: a relay creates
	 * accounts on any first login, and then the IMAP login below is one
	 * of an existing account on any IMAP server that shares the
	 * relay's mailboxes. */
	p->setup_ok = bench_account_create(r, &p->rcpt) == 0 &&
		      bench_sender_create(&p->snd) == 0;
	pthread_barrier_wait(p->bar);
	pthread_barrier_wait(p->bar); /* the timer starts */
	pthread_mutex_lock(&p->mu);
	while (!p->rcpt_ready)
		pthread_cond_wait(&p->cv, &p->mu);
	if (p->rcpt_gone)
		p->setup_ok = false;
	pthread_mutex_unlock(&p->mu);
	for (unsigned seq = 0; p->setup_ok && seq < p->cap; seq++) {
		int64_t t250 = 0, end;
		int rc;

		if (p->lockstep ? seq >= p->quota
				: bench_now_ns() >= p->send_until)
			break;
		snprintf(msgid, sizeof(msgid), "rmb-%s-%u-%u@%s", r->run_id,
			 p->idx, seq, r->o.domain);
		rc = bench_sender_send(
			&p->snd, p->rcpt.addr, msgid,
			p->lockstep ? r->deadline : p->send_until, &t250);
		if (rc == 1)
			break;
		if (rc < 0) {
			p->snd.failed++;
			continue;
		}
		pthread_mutex_lock(&p->mu);
		p->msgs[seq].sent = true;
		p->msgs[seq].t250 = t250;
		p->nsent++;
		if (p->lockstep) {
			/* Wait for the recipient to fetch it. */
			struct timespec ts;

			end = bench_now_ns() +
			      (int64_t)(r->o.msg_timeout * 1e9);
			while (!p->msgs[seq].seen && !p->rcpt_gone &&
			       bench_now_ns() < end) {
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 50000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&p->cv, &p->mu, &ts);
			}
		}
		pthread_mutex_unlock(&p->mu);
	}
	if (p->snd.authed >= 0)
		bench_smtp_quit(&p->snd.smtp);
	p->snd.authed = -1;
	pthread_mutex_lock(&p->mu);
	p->snd_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void bench_mode_pairs(struct bench_run *r, bool lockstep)
{
	const struct bench_opts *o = &r->o;
	unsigned P = o->pairs, sent = 0, seen = 0, dup = 0, failed = 0;
	unsigned accts = 0;
	struct bench_pair *pp = calloc(P, sizeof(*pp));
	pthread_barrier_t bar;
	int64_t t0, t_last = 0, ts;
	const char *lat_exists =
		lockstep ? "latency_250_to_exists" : "tput_250_to_exists";
	const char *lat_fetch =
		lockstep ? "latency_250_to_fetched" : "tput_250_to_fetched";

	if (pp == NULL)
		return;
	pthread_barrier_init(&bar, NULL, P + 1);
	for (unsigned i = 0; i < P; i++) {
		struct bench_pair *p = &pp[i];
		unsigned nacc;

		p->run = r;
		p->idx = i;
		p->lockstep = lockstep;
		p->quota = o->n / P + (i < o->n % P);
		p->cap = lockstep ? p->quota : BENCH_PAIR_MSGS;
		p->bar = &bar;
		p->msgs = calloc(p->cap ? p->cap : 1, sizeof(*p->msgs));
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		bench_account_make(&p->rcpt, o->domain, o->localpart_len);
		nacc = lockstep ? bench_div_up(p->quota, o->burst) + 1
				: o->senders;
		if (p->msgs == NULL || bench_sender_init(&p->snd, r, nacc) != 0)
			abort();
		accts += nacc;
	}
	fprintf(stderr, "bench: %s: %u pairs, creating %u sender accounts\n",
		lockstep ? "latency" : "throughput", P, accts);
	ts = bench_now_ns();
	for (unsigned i = 0; i < P; i++) {
		if (pthread_create(&pp[i].ts, NULL, bench_pair_send_thread,
				   &pp[i]) != 0)
			abort();
	}
	pthread_barrier_wait(&bar);
	t0 = bench_now_ns();
	bench_fig(r, lockstep ? "latency_setup_s" : "tput_setup_s",
		  bench_ms(t0 - ts) / 1000, "s");
	for (unsigned i = 0; i < P; i++) {
		pp[i].send_until = t0 + (int64_t)(o->duration * 1e9);
		if (pthread_create(&pp[i].tr, NULL, bench_pair_rcpt_thread,
				   &pp[i]) != 0)
			abort();
	}
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < P; i++) {
		struct bench_pair *p = &pp[i];

		pthread_join(p->ts, NULL);
		pthread_join(p->tr, NULL);
		for (unsigned k = 0; k < p->cap; k++) {
			const struct bench_msg *mm = &p->msgs[k];

			if (!mm->sent)
				continue;
			if (mm->seen) {
				bench_add(r, lat_exists,
					  mm->texists - mm->t250);
				bench_add(r, lat_fetch, mm->tfetch - mm->t250);
			}
		}
		sent += p->nsent;
		seen += p->nseen;
		dup += p->dup;
		failed += p->snd.failed;
		if (p->last_seen > t_last)
			t_last = p->last_seen;
		bench_sender_free(&p->snd);
		free(p->msgs);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
	}
	pthread_barrier_destroy(&bar);
	if (lockstep) {
		bench_fig(r, "latency_submitted", sent, "");
		bench_fig(r, "latency_seen", seen, "");
		bench_fig(r, "latency_lost", sent - seen, "never seen");
		bench_fig(r, "latency_failed", failed, "not accepted");
	} else {
		bench_fig(r, "tput_pairs", P, "");
		bench_fig(r, "tput_duration_s", o->duration, "s");
		bench_fig(r, "tput_submitted", sent, "");
		bench_fig(r, "tput_seen", seen, "");
		bench_fig(r, "tput_lost", sent - seen, "never seen");
		bench_fig(r, "tput_failed", failed, "not accepted");
		bench_fig(r, "tput_delivered_per_s",
			  t_last > t0 ? seen / ((double)(t_last - t0) / 1e9)
				      : 0,
			  "messages/s seen by recipients");
		bench_fig(r, "tput_sender_accounts", accts, "");
	}
	if (dup)
		bench_fig(r,
			  lockstep ? "latency_duplicates" : "tput_duplicates",
			  dup, "");
	free(pp);
}

/* ---- options ---- */

static int bench_usage(FILE *f)
{
	fprintf(f,
		"usage: ringmail bench --host HOST [--domain DOMAIN] "
		"[options]\n"
		"Measure a chatmail relay over the network as chat clients "
		"do.\n\n"
		"  --mode M          all|connect|submit|latency|throughput "
		"(all: connect,\n"
		"                    latency, throughput)\n"
		"  --host H          relay address or name (default "
		"127.0.0.1)\n"
		"  --domain D        mail domain (default: --host)\n"
		"  --smtps-port P    SMTP submission with TLS (465)\n"
		"  --submission-port P  SMTP submission + STARTTLS (587)\n"
		"  --starttls        submit on --submission-port with "
		"STARTTLS\n"
		"  --imaps-port P    IMAP with TLS (993)\n"
		"  --imap-plain      IMAP without TLS on --imaps-port\n"
		"  --no-imap         skip IMAP in connect mode\n"
		"  --insecure        do not verify the relay's certificate\n"
		"  -n N              messages (submit, latency; default 100)\n"
		"  --connect-n N     iterations of each connect timing (10)\n"
		"  --clients C       concurrent clients in submit mode (1)\n"
		"  --pairs M         sender/recipient pairs (1)\n"
		"  --duration S      throughput sending time, seconds (10)\n"
		"  --senders K       sender accounts per pair in throughput "
		"(20)\n"
		"  --burst B         messages a fresh sender may send at once "
		"(10)\n"
		"  --per-minute R    the relay's messages/min per sender (60)\n"
		"  --localpart-len L fresh account local part length (9)\n"
		"  --size S          cleartext octets per message (500)\n"
		"  --msg-timeout S   a message not seen after S s is lost "
		"(10)\n"
		"  --timeout S       bound of the whole run, seconds (300)\n"
		"  --json            one JSON object instead of the table\n");
	return 2;
}

enum {
	BO_HOST = 256,
	BO_DOMAIN,
	BO_SMTPS,
	BO_SUBM,
	BO_STARTTLS,
	BO_IMAPS,
	BO_IMAP_PLAIN,
	BO_NO_IMAP,
	BO_INSECURE,
	BO_CONNECT_N,
	BO_CLIENTS,
	BO_PAIRS,
	BO_DURATION,
	BO_SENDERS,
	BO_BURST,
	BO_PER_MIN,
	BO_LPLEN,
	BO_SIZE,
	BO_MSG_TIMEOUT,
	BO_TIMEOUT,
	BO_JSON,
	BO_MODE,
	BO_HELP,
};

static int bench_num(const char *name, const char *s, double lo, double hi,
		     double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || *v < lo || *v > hi) {
		fprintf(stderr, "ringmail bench: %s: %s is not in %g..%g\n",
			name, s, lo, hi);
		return -1;
	}
	return 0;
}

static int bench_parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lo[] = {
		{"host", required_argument, NULL, BO_HOST},
		{"domain", required_argument, NULL, BO_DOMAIN},
		{"smtps-port", required_argument, NULL, BO_SMTPS},
		{"submission-port", required_argument, NULL, BO_SUBM},
		{"starttls", no_argument, NULL, BO_STARTTLS},
		{"imaps-port", required_argument, NULL, BO_IMAPS},
		{"imap-plain", no_argument, NULL, BO_IMAP_PLAIN},
		{"no-imap", no_argument, NULL, BO_NO_IMAP},
		{"insecure", no_argument, NULL, BO_INSECURE},
		{"connect-n", required_argument, NULL, BO_CONNECT_N},
		{"clients", required_argument, NULL, BO_CLIENTS},
		{"pairs", required_argument, NULL, BO_PAIRS},
		{"duration", required_argument, NULL, BO_DURATION},
		{"senders", required_argument, NULL, BO_SENDERS},
		{"burst", required_argument, NULL, BO_BURST},
		{"per-minute", required_argument, NULL, BO_PER_MIN},
		{"localpart-len", required_argument, NULL, BO_LPLEN},
		{"size", required_argument, NULL, BO_SIZE},
		{"msg-timeout", required_argument, NULL, BO_MSG_TIMEOUT},
		{"timeout", required_argument, NULL, BO_TIMEOUT},
		{"json", no_argument, NULL, BO_JSON},
		{"mode", required_argument, NULL, BO_MODE},
		{"help", no_argument, NULL, BO_HELP},
		{NULL, 0, NULL, 0},
	};
	int c;
	double v;

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->mode = "all";
	o->smtps_port = 465;
	o->submission_port = 587;
	o->imaps_port = 993;
	o->n = 100;
	o->connect_n = 10;
	o->pairs = 1;
	o->clients = 1;
	o->duration = 10;
	o->senders = 20;
	o->burst = 10;
	o->per_minute = 60;
	o->localpart_len = 9;
	o->size = 500;
	o->msg_timeout = 10;
	o->timeout = 300;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
#define NUM(lo_, hi_)                                                  \
	do {                                                           \
		if (bench_num(argv[optind - 1], optarg, lo_, hi_, &v)) \
			return -1;                                     \
	} while (0)
		switch (c) {
		case BO_HOST:
			o->host = optarg;
			break;
		case BO_DOMAIN:
			o->domain = optarg;
			break;
		case BO_SMTPS:
			NUM(1, 65535);
			o->smtps_port = (uint16_t)v;
			break;
		case BO_SUBM:
			NUM(1, 65535);
			o->submission_port = (uint16_t)v;
			break;
		case BO_STARTTLS:
			o->starttls = true;
			break;
		case BO_IMAPS:
			NUM(1, 65535);
			o->imaps_port = (uint16_t)v;
			break;
		case BO_IMAP_PLAIN:
			o->imap_plain = true;
			break;
		case BO_NO_IMAP:
			o->no_imap = true;
			break;
		case BO_INSECURE:
			o->insecure = true;
			break;
		case 'n':
			NUM(1, BENCH_MAX_N);
			o->n = (unsigned)v;
			break;
		case BO_CONNECT_N:
			NUM(1, 10000);
			o->connect_n = (unsigned)v;
			break;
		case BO_CLIENTS:
			NUM(1, BENCH_MAX_CLIENTS);
			o->clients = (unsigned)v;
			break;
		case BO_PAIRS:
			NUM(1, BENCH_MAX_PAIRS);
			o->pairs = (unsigned)v;
			break;
		case BO_DURATION:
			NUM(0.1, 3600);
			o->duration = v;
			break;
		case BO_SENDERS:
			NUM(1, 10000);
			o->senders = (unsigned)v;
			break;
		case BO_BURST:
			NUM(1, 100000);
			o->burst = (unsigned)v;
			break;
		case BO_PER_MIN:
			NUM(1, 1000000);
			o->per_minute = (unsigned)v;
			break;
		case BO_LPLEN:
			NUM(1, 64);
			o->localpart_len = (unsigned)v;
			break;
		case BO_SIZE:
			NUM(64, 10000000);
			o->size = (unsigned)v;
			break;
		case BO_MSG_TIMEOUT:
			NUM(0.1, 600);
			o->msg_timeout = v;
			break;
		case BO_TIMEOUT:
			NUM(1, 86400);
			o->timeout = v;
			break;
		case BO_JSON:
			o->json = true;
			break;
		case BO_MODE:
			o->mode = optarg;
			break;
		case BO_HELP:
			bench_usage(stdout);
			return 1;
		default:
			return -1;
		}
#undef NUM
	}
	if (optind != argc) {
		fprintf(stderr, "ringmail bench: unexpected argument %s\n",
			argv[optind]);
		return -1;
	}
	if (o->domain == NULL)
		o->domain = o->host;
	if (strcmp(o->mode, "all") != 0 && strcmp(o->mode, "connect") != 0 &&
	    strcmp(o->mode, "submit") != 0 && strcmp(o->mode, "latency") != 0 &&
	    strcmp(o->mode, "throughput") != 0) {
		fprintf(stderr, "ringmail bench: unknown mode %s\n", o->mode);
		return -1;
	}
	if (o->n < o->pairs && strcmp(o->mode, "latency") == 0)
		o->pairs = o->n;
	return 0;
}

int bench_cmd_run(int argc, char **argv)
{
	struct bench_run *r;
	char err[240] = "";
	uint8_t rnd[8];
	int rc = 1, p;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return 1;
	p = bench_parse_opts(argc, argv, &r->o);
	if (p != 0) {
		free(r);
		return p > 0 ? 0 : bench_usage(stderr);
	}
	pthread_mutex_init(&r->mu, NULL);
	r->t.host = r->o.host;
	r->t.domain = r->o.domain;
	r->t.insecure = r->o.insecure;
	r->t.io_timeout_ms = 30000;
	r->deadline = bench_now_ns() + (int64_t)(r->o.timeout * 1e9);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 7, sizeof(rnd));
	for (unsigned i = 0; i < 8; i++)
		r->run_id[i] = "abcdefghijklmnopqrstuvwxyz234567"[rnd[i] % 32];
	if (bench_target_init(&r->t, err, sizeof(err)) != 0 ||
	    bench_pgp_make(&r->pgp, r->o.domain, r->o.size, err, sizeof(err)) !=
		    0) {
		fprintf(stderr, "ringmail bench: %s\n", err);
		goto out;
	}
	fprintf(stderr,
		"bench: %s (%s), PGP/MIME message of %zu octets made with "
		"GPGME\n",
		r->o.host, r->o.domain, r->pgp.body_len);
	if (strcmp(r->o.mode, "connect") == 0 || strcmp(r->o.mode, "all") == 0)
		bench_mode_connect(r);
	if (strcmp(r->o.mode, "submit") == 0)
		bench_mode_submit(r);
	if (strcmp(r->o.mode, "latency") == 0 || strcmp(r->o.mode, "all") == 0)
		bench_mode_pairs(r, true);
	if (strcmp(r->o.mode, "throughput") == 0 ||
	    strcmp(r->o.mode, "all") == 0)
		bench_mode_pairs(r, false);
	if (atomic_load(&r->rate_limited) > 0 || atomic_load(&r->paced_ns) > 0)
		bench_note(r,
			   "rate limit: %u replies 450 (Too much mail), %.2f s "
			   "spent pacing in total over all senders",
			   atomic_load(&r->rate_limited),
			   (double)atomic_load(&r->paced_ns) / 1e9);
	bench_fig(r, "rate_limited_replies", atomic_load(&r->rate_limited),
		  "450 Too much mail");
	bench_fig(r, "paced_s", (double)atomic_load(&r->paced_ns) / 1e9,
		  "s waited for the rate limit");
	if (bench_now_ns() > r->deadline)
		bench_note(r, "--timeout reached: the run was cut short");
	bench_print(r);
	rc = r->first_error[0] ? 1 : 0;
out:
	for (unsigned i = 0; i < r->nrows; i++)
		bench_samples_free(&r->rows[i].s);
	bench_pgp_free(&r->pgp);
	bench_target_free(&r->t);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return rc;
}
