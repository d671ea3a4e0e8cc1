/* tests/unit/imap_model: a client, the proxy's IDLE tracker (the real
 * imap_idle) and a model of Dovecot's command processing, stepped by a
 * byte string, for test_imap_idle and fuzz_imap_idle. The model Dovecot
 * runs one command at a time in order, like Dovecot for NOOP/IDLE/DONE:
 * IDLE answers "+ idling", then the next line ends it (DONE: OK, anything
 * else: BAD); new mail shows as "* n EXISTS" on NOOP, or while idling on a
 * tick (stock Dovecot's 500 ms timer). imap_model_check says whether the
 * client saw exactly what a client of a plain Dovecot would: one tagged
 * reply per command it sent, with its own tag, and "+" only to its IDLE. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "imap-proxy/imap_idle.h"

#define MODEL_Q    64
#define MODEL_LINE 96

struct model_q {
	char line[MODEL_Q][MODEL_LINE];
	unsigned head, n;
};

struct model {
	struct imap_idle idle;
	/* client */
	unsigned next_tag;
	char outstanding[MODEL_Q][16]; /* tags sent, not yet answered */
	unsigned n_out;
	bool c_idle_sent; /* IDLE sent, "+" not yet seen */
	bool c_idling;    /* "+" seen, DONE not sent */
	char c_idle_tag[16];
	/* Dovecot */
	struct model_q dq; /* lines written to Dovecot */
	bool d_idling;
	char d_idle_tag[IMAP_TAG_MAX + 1];
	unsigned mail, mail_seen;
	/* what went wrong ("" = nothing) */
	char err[160];
	unsigned forwarded, swallowed, wakes;
};

static void model_push(struct model_q *q, const char *line)
{
	if (q->n >= MODEL_Q)
		return;
	snprintf(q->line[(q->head + q->n) % MODEL_Q], MODEL_LINE, "%s", line);
	q->n++;
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	imap_idle_init(&m->idle);
}

static void model_fail(struct model *m, const char *what, const char *line)
{
	if (m->err[0] == '\0')
		snprintf(m->err, sizeof(m->err), "%s: %s", what, line);
}

static void model_proxy_wake(struct model *m);

/* The client receives a line the proxy forwarded. */
static void model_client_rx(struct model *m, const char *line)
{
	char tag[IMAP_TAG_MAX + 1];
	size_t n = strcspn(line, " ");

	snprintf(tag, sizeof(tag), "%.*s", (int)n, line);
	m->forwarded++;
	if (strcmp(tag, "*") == 0)
		return;
	if (strcmp(tag, "+") == 0) {
		if (!m->c_idle_sent) {
			model_fail(m, "stray continuation", line);
			return;
		}
		m->c_idle_sent = false;
		m->c_idling = true;
		return;
	}
	for (unsigned i = 0; i < m->n_out; i++) {
		if (strcmp(m->outstanding[i], tag) == 0) {
			memmove(m->outstanding[i], m->outstanding[i + 1],
				(m->n_out - i - 1) * sizeof(m->outstanding[0]));
			m->n_out--;
			if (strcmp(tag, m->c_idle_tag) == 0) {
				m->c_idle_sent = false;
				m->c_idling = false;
				m->c_idle_tag[0] = '\0';
			}
			return;
		}
	}
	model_fail(m, "stray tagged reply", line);
}

/* Dovecot emits a line; the proxy forwards or swallows it. */
static void model_dovecot_tx(struct model *m, const char *line)
{
	char tag[IMAP_TAG_MAX + 1];
	size_t n = strcspn(line, " ");

	snprintf(tag, sizeof(tag), "%.*s", (int)n, line);
	if (imap_idle_server_line(&m->idle, tag) == IMAP_IDLE_SWALLOW)
		m->swallowed++;
	else
		model_client_rx(m, line);
	if (imap_idle_wake_due(&m->idle))
		model_proxy_wake(m);
}

static void model_proxy_wake(struct model *m)
{
	char buf[IMAP_IDLE_WAKE_MAX], *p, *e;
	size_t n = imap_idle_wake(&m->idle, buf, sizeof(buf));

	if (n == 0)
		return;
	m->wakes++;
	buf[n] = '\0';
	for (p = buf; (e = strstr(p, "\r\n")) != NULL; p = e + 2) {
		*e = '\0';
		model_push(&m->dq, p);
	}
}

/* Dovecot processes the next line it was sent. */
static void model_dovecot_step(struct model *m)
{
	char line[MODEL_LINE], tag[IMAP_TAG_MAX + 1], out[MODEL_LINE + 32];
	const char *name;

	if (m->dq.n == 0)
		return;
	snprintf(line, sizeof(line), "%s", m->dq.line[m->dq.head]);
	m->dq.head = (m->dq.head + 1) % MODEL_Q;
	m->dq.n--;
	if (m->d_idling) {
		m->d_idling = false;
		snprintf(out, sizeof(out), "%s %s", m->d_idle_tag,
			 strcmp(line, "DONE") == 0 ? "OK Idle completed."
						   : "BAD Expected DONE.");
		model_dovecot_tx(m, out);
		return;
	}
	name = strchr(line, ' ');
	if (name == NULL) {
		model_dovecot_tx(m, "* BAD Error in IMAP command.");
		return;
	}
	snprintf(tag, sizeof(tag), "%.*s", (int)(name - line), line);
	name++;
	if (strcmp(name, "IDLE") == 0) {
		m->d_idling = true;
		snprintf(m->d_idle_tag, sizeof(m->d_idle_tag), "%s", tag);
		model_dovecot_tx(m, "+ idling");
		return;
	}
	if (m->mail_seen < m->mail) {
		m->mail_seen = m->mail;
		snprintf(out, sizeof(out), "* %u EXISTS", m->mail);
		model_dovecot_tx(m, out);
	}
	snprintf(out, sizeof(out), "%s OK %s completed.", tag, name);
	model_dovecot_tx(m, out);
}

static void model_dovecot_tick(struct model *m)
{
	char out[32];

	if (!m->d_idling || m->mail_seen >= m->mail)
		return;
	m->mail_seen = m->mail;
	snprintf(out, sizeof(out), "* %u EXISTS", m->mail);
	model_dovecot_tx(m, out);
}

/* The client sends a line through the proxy. */
static void model_client_send(struct model *m, const char *line,
			      const char *tag, const char *name)
{
	if (imap_idle_client_idling(&m->idle))
		imap_idle_client_done(&m->idle);
	else
		imap_idle_client_cmd(&m->idle, tag, false, name);
	model_push(&m->dq, line);
}

static void model_client_act(struct model *m, uint8_t how)
{
	char line[MODEL_LINE], tag[16];

	if (m->dq.n > MODEL_Q - 8 || m->n_out >= MODEL_Q - 1)
		return;
	if (m->c_idling) {
		model_client_send(m, "DONE", "DONE", "");
		m->c_idling = false;
		/* its tagged reply is still due under c_idle_tag */
		return;
	}
	if (m->c_idle_sent)
		return; /* a client waits for "+" */
	snprintf(tag, sizeof(tag), "c%u", m->next_tag++);
	snprintf(m->outstanding[m->n_out++], sizeof(m->outstanding[0]), "%s",
		 tag);
	if ((how & 1) && m->c_idle_tag[0] == '\0') {
		snprintf(line, sizeof(line), "%s IDLE", tag);
		snprintf(m->c_idle_tag, sizeof(m->c_idle_tag), "%s", tag);
		m->c_idle_sent = true;
		model_client_send(m, line, tag, "IDLE");
	} else {
		snprintf(line, sizeof(line), "%s NOOP", tag);
		model_client_send(m, line, tag, "NOOP");
	}
}

/* One step chosen by @op. */
static void model_step(struct model *m, uint8_t op)
{
	switch (op & 3) {
	case 0:
		model_client_act(m, op >> 2);
		break;
	case 1:
		m->mail++;
		model_proxy_wake(m);
		break;
	case 2:
		model_dovecot_step(m);
		break;
	case 3:
		model_dovecot_tick(m);
		break;
	}
}

/* Finish: the client ends its IDLE, Dovecot answers everything. Then the
 * client must have had every reply, and no more. */
static bool model_finish(struct model *m)
{
	for (unsigned round = 0; round < 4 * MODEL_Q && m->err[0] == '\0';
	     round++) {
		if (m->c_idling)
			model_client_act(m, 0);
		if (m->dq.n == 0 && !m->c_idling && !m->c_idle_sent)
			break;
		model_dovecot_step(m);
	}
	if (m->err[0] == '\0' && m->n_out != 0)
		model_fail(m, "unanswered", m->outstanding[0]);
	if (m->err[0] == '\0' && m->mail_seen != m->mail && m->mail > 0) {
		/* A last NOOP shows what is left. */
		model_client_act(m, 0);
		while (m->dq.n > 0)
			model_dovecot_step(m);
		if (m->mail_seen != m->mail)
			model_fail(m, "mail never shown", "");
	}
	return m->err[0] == '\0';
}
