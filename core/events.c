/* core/events: a fixed subscriber list, written at boot, read-only
 * afterwards (so no lock on the delivery path). */
#include "core/events.h"

/* system */
#include <errno.h>
#include <string.h>

void events_init(struct events *e)
{
	memset(e, 0, sizeof(*e));
}

int events_subscribe(struct events *e, events_delivered_fn *fn, void *arg)
{
	if (e->n >= EVENTS_SUBSCRIBERS_MAX)
		return -ENOSPC;
	e->sub[e->n].fn = fn;
	e->sub[e->n].arg = arg;
	e->n++;
	return 0;
}

void events_raise_delivered(const struct events *e, const char *rcpt,
			    const char *from)
{
	struct events_delivered ev = {rcpt, from != NULL ? from : ""};

	if (e == NULL)
		return;
	for (unsigned i = 0; i < e->n; i++)
		e->sub[i].fn(&ev, e->sub[i].arg);
}
