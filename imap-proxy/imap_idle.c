/* imap-proxy/imap_idle: IDLE tracking and the hidden wake-up. */
#include "imap-proxy/imap_idle.h"

/* system */
#include <stdio.h>
#include <string.h>
#include <strings.h>

void imap_idle_init(struct imap_idle *t)
{
	memset(t, 0, sizeof(*t));
}

static bool imap_idle_untrackable(const char *tag, bool tag_truncated)
{
	return tag_truncated || strcmp(tag, IMAP_IDLE_PTAG) == 0 ||
	       strcmp(tag, "+") == 0 || strcmp(tag, "*") == 0;
}

static void imap_idle_start(struct imap_idle *t, const char *tag,
			    bool untracked)
{
	t->state = IMAP_IDLE_STARTING;
	if (untracked)
		t->tag[0] = '\0'; /* followed, never woken */
	else
		snprintf(t->tag, sizeof(t->tag), "%s", tag);
}

void imap_idle_client_cmd(struct imap_idle *t, const char *tag,
			  bool tag_truncated, const char *name)
{
	if (strcmp(name, "IDLE") != 0)
		return;
	if (t->state == IMAP_IDLE_NONE) {
		imap_idle_start(t, tag,
				imap_idle_untrackable(tag, tag_truncated));
	} else if (t->state == IMAP_IDLE_DONE && !t->next_pending) {
		t->next_pending = true;
		t->next_untracked = imap_idle_untrackable(tag, tag_truncated);
		snprintf(t->next_tag, sizeof(t->next_tag), "%s", tag);
	}
}

bool imap_idle_client_idling(const struct imap_idle *t)
{
	return t->state == IMAP_IDLE_STARTING || t->state == IMAP_IDLE_ON;
}

void imap_idle_client_done(struct imap_idle *t)
{
	if (imap_idle_client_idling(t))
		t->state = IMAP_IDLE_DONE;
	t->again = false;
}

static bool imap_idle_tag_is(const struct imap_idle *t, const char *tag)
{
	return t->tag[0] != '\0' && strcmp(t->tag, tag) == 0;
}

enum imap_idle_verdict imap_idle_server_line(struct imap_idle *t,
					     const char *tag)
{
	if (strcmp(tag, "*") == 0)
		return IMAP_IDLE_FORWARD;
	if (strcmp(tag, "+") == 0) {
		if (t->swallow_cont > 0) {
			/* Dovecot idles again after a wake-up. */
			if (--t->swallow_cont == 0)
				t->waking = false;
			return IMAP_IDLE_SWALLOW;
		}
		if (t->state == IMAP_IDLE_STARTING)
			t->state = IMAP_IDLE_ON;
		return IMAP_IDLE_FORWARD;
	}
	if (t->swallow_noop > 0 && strcmp(tag, IMAP_IDLE_PTAG) == 0) {
		t->swallow_noop--;
		return IMAP_IDLE_SWALLOW;
	}
	if (t->state != IMAP_IDLE_NONE && imap_idle_tag_is(t, tag)) {
		if (t->swallow_tagged > 0) {
			t->swallow_tagged--; /* the end of the IDLE we ended */
			return IMAP_IDLE_SWALLOW;
		}
		/* The client's IDLE is over (its DONE, or Dovecot refused
		 * the IDLE, ours included: then no "+" will come). */
		if (t->swallow_cont > 0 && t->swallow_noop == 0) {
			t->swallow_cont = 0;
			t->waking = false;
		}
		t->state = IMAP_IDLE_NONE;
		t->again = false;
		if (t->next_pending) {
			t->next_pending = false;
			imap_idle_start(t, t->next_tag, t->next_untracked);
		}
		return IMAP_IDLE_FORWARD;
	}
	return IMAP_IDLE_FORWARD;
}

size_t imap_idle_wake(struct imap_idle *t, char *out, size_t cap)
{
	int n;

	if (t->tag[0] == '\0' || !imap_idle_client_idling(t))
		return 0;
	if (t->state == IMAP_IDLE_STARTING || t->waking) {
		t->again = true; /* once Dovecot idles (again) */
		return 0;
	}
	n = snprintf(out, cap, "DONE\r\n" IMAP_IDLE_PTAG " NOOP\r\n%s IDLE\r\n",
		     t->tag);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	t->swallow_tagged++;
	t->swallow_noop++;
	t->swallow_cont++;
	t->waking = true;
	t->again = false;
	t->wakes++;
	return (size_t)n;
}

bool imap_idle_wake_due(const struct imap_idle *t)
{
	return t->again && t->state == IMAP_IDLE_ON && !t->waking &&
	       t->tag[0] != '\0';
}
