/* core/loop: what both backends share. The slot table with generations,
 * the pending list (deferred deliveries and reconciliation), the timer
 * min-heap, the loop_post mailbox woken through an eventfd, the kernel
 * probe and the backend choice. See core/loop-int.h for the model. */
#include "core/loop.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/tls.h>

/* project */
#include "core/log.h"
#include "core/loop-int.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* Listeners and polls share the slot table with connections. */
#define LOOP_SLOT_EXTRA 1024u
/* Send buffers larger than this are released when they drain. */
#define LOOP_OUT_KEEP (64u * 1024u)

static uint64_t loop_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- probe ---- */

static pthread_once_t loop_probe_once = PTHREAD_ONCE_INIT;
static struct loop_probe loop_probe_result;

/* Is the "tls" ULP registered, or is tls.ko there to be loaded? */
static bool loop_probe_ktls(void)
{
	char line[512], path[300];
	struct utsname u;
	bool found = false;
	FILE *f;

	f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");
	if (f != NULL) {
		if (fgets(line, sizeof(line), f) != NULL) {
			for (char *tok = line; *tok != '\0';) {
				size_t n = strcspn(tok, " \t\n");

				if (n == 3 && memcmp(tok, "tls", 3) == 0)
					found = true;
				tok += n;
				tok += strspn(tok, " \t\n");
			}
		}
		fclose(f);
	}
	if (found || uname(&u) != 0)
		return found;
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "/net/tls/tls.ko") != NULL)
			found = true;
	}
	fclose(f);
	return found;
}

static void loop_probe_run(void)
{
	loop_uring_probe(&loop_probe_result);
	loop_probe_result.ktls_ulp = loop_probe_ktls();
}

const struct loop_probe *loop_probe_kernel(void)
{
	pthread_once(&loop_probe_once, loop_probe_run);
	return &loop_probe_result;
}

/* ---- names ---- */

const char *loop_backend_name(enum loop_backend b)
{
	switch (b) {
	case LOOP_BACKEND_AUTO:
		return "auto";
	case LOOP_BACKEND_URING:
		return "uring";
	case LOOP_BACKEND_EPOLL:
		return "epoll";
	}
	return "?";
}

int loop_backend_parse(const char *s, enum loop_backend *b_r)
{
	if (strcmp(s, "auto") == 0)
		*b_r = LOOP_BACKEND_AUTO;
	else if (strcmp(s, "uring") == 0 || strcmp(s, "io_uring") == 0)
		*b_r = LOOP_BACKEND_URING;
	else if (strcmp(s, "epoll") == 0)
		*b_r = LOOP_BACKEND_EPOLL;
	else
		return -1;
	return 0;
}

enum loop_backend loop_get_backend(const struct loop *l)
{
	return l->backend;
}

uint64_t loop_now_ms(const struct loop *l)
{
	return l->now_ms;
}

void loop_clock_update(struct loop *l)
{
	l->now_ms = loop_clock_ms();
}

unsigned loop_worker_id(const struct loop *l)
{
	return l->worker_id;
}

/* ---- slots ---- */

static int loop_slot_alloc(struct loop *l, struct loop_obj *o)
{
	uint32_t cap_max = l->max_conns + LOOP_SLOT_EXTRA;
	uint32_t ncap, i, idx;
	struct loop_slot *s;

	if (l->free_head == LOOP_SLOT_NONE) {
		if (l->nslots >= cap_max)
			return -EMFILE;
		ncap = l->nslots != 0 ? l->nslots * 2 : 64;
		if (ncap > cap_max)
			ncap = cap_max;
		s = realloc(l->slots, (size_t)ncap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		for (i = l->nslots; i < ncap; i++) {
			s[i].obj = NULL;
			s[i].gen = 1;
			s[i].next_free = i + 1 < ncap ? i + 1 : LOOP_SLOT_NONE;
		}
		l->free_head = l->nslots;
		l->slots = s;
		l->nslots = ncap;
	}
	idx = l->free_head;
	l->free_head = l->slots[idx].next_free;
	l->slots[idx].obj = o;
	o->loop = l;
	o->slot = idx;
	o->gen = l->slots[idx].gen;
	return 0;
}

static void loop_slot_release(struct loop *l, struct loop_obj *o)
{
	struct loop_slot *s = &l->slots[o->slot];

	s->obj = NULL;
	s->gen = (s->gen + 1) & LOOP_GEN_MASK;
	if (s->gen == 0)
		s->gen = 1;
	s->next_free = l->free_head;
	l->free_head = o->slot;
}

struct loop_obj *loop_obj_lookup(struct loop *l, uint64_t ud)
{
	uint32_t slot = (uint32_t)(ud >> 32);
	uint32_t gen = (uint32_t)(ud >> 8) & LOOP_GEN_MASK;
	struct loop_obj *o;

	if (slot >= l->nslots)
		return NULL;
	o = l->slots[slot].obj;
	if (o == NULL || o->gen != gen)
		return NULL;
	return o;
}

void loop_obj_queue(struct loop_obj *o)
{
	struct loop *l = o->loop;

	if (o->queued)
		return;
	o->queued = true;
	o->pend_next = NULL;
	if (l->pend_tail != NULL)
		l->pend_tail->pend_next = o;
	else
		l->pend_head = o;
	l->pend_tail = o;
}

/* ---- timers: binary min-heap on deadline ---- */

static void loop_heap_set(struct loop *l, uint32_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void loop_heap_up(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (l->heap[parent]->deadline_ms <= t->deadline_ms)
			break;
		loop_heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	loop_heap_set(l, i, t);
}

static void loop_heap_down(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len &&
		    l->heap[c + 1]->deadline_ms < l->heap[c]->deadline_ms)
			c++;
		if (t->deadline_ms <= l->heap[c]->deadline_ms)
			break;
		loop_heap_set(l, i, l->heap[c]);
		i = c;
	}
	loop_heap_set(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *arg)
{
	t->deadline_ms = 0;
	t->heap_idx = UINT32_MAX;
	t->fn = fn;
	t->arg = arg;
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t after_ms)
{
	uint64_t old = t->deadline_ms;
	struct loop_timer **h;

	t->deadline_ms = l->now_ms + after_ms;
	if (loop_timer_armed(t)) {
		if (t->deadline_ms < old)
			loop_heap_up(l, t->heap_idx);
		else
			loop_heap_down(l, t->heap_idx);
		return;
	}
	if (l->heap_len == l->heap_cap) {
		uint32_t ncap = l->heap_cap != 0 ? l->heap_cap * 2 : 64;

		h = realloc(l->heap, (size_t)ncap * sizeof(*h));
		if (h == NULL) {
			log_err("loop: timer heap: out of memory");
			return;
		}
		l->heap = h;
		l->heap_cap = ncap;
	}
	loop_heap_set(l, l->heap_len++, t);
	loop_heap_up(l, t->heap_idx);
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
	uint32_t i = t->heap_idx;
	struct loop_timer *last;

	if (!loop_timer_armed(t))
		return;
	t->heap_idx = UINT32_MAX;
	last = l->heap[--l->heap_len];
	if (i == l->heap_len)
		return;
	loop_heap_set(l, i, last);
	if (i > 0 && l->heap[(i - 1) / 2]->deadline_ms > last->deadline_ms)
		loop_heap_up(l, i);
	else
		loop_heap_down(l, i);
}

/* Fire what is due. A timer re-armed for "now" from its callback waits
 * for the next iteration, so this always terminates. */
static int loop_timers_run(struct loop *l)
{
	uint32_t budget = l->heap_len;
	int n = 0;

	while (l->heap_len > 0 && budget-- > 0 &&
	       l->heap[0]->deadline_ms <= l->now_ms) {
		struct loop_timer *t = l->heap[0];

		loop_timer_disarm(l, t);
		t->fn(t, t->arg);
		n++;
	}
	return n;
}

/* Milliseconds until the first deadline, -1 if none. */
static int loop_timers_wait_ms(const struct loop *l)
{
	uint64_t now, d;

	if (l->heap_len == 0)
		return -1;
	now = loop_clock_ms();
	d = l->heap[0]->deadline_ms;
	if (d <= now)
		return 0;
	return d - now > INT_MAX ? INT_MAX : (int)(d - now);
}

/* ---- connections: common parts ---- */

void loop_conn_emit(struct loop_conn *c, enum loop_conn_ev_type type,
		    const uint8_t *data, size_t len, int err, uint8_t tls_type)
{
	struct loop_conn_ev ev = {
		.type = type,
		.data = data,
		.len = len,
		.err = err,
		.tls_record_type = tls_type,
	};

	if ((c->flags & LOOP_CONN_F_CLOSING) && type != LOOP_CONN_EV_CLOSED)
		return;
	c->fn(c, &ev, c->arg);
}

bool loop_conn_want_rx(const struct loop_conn *c)
{
	return (c->flags & (LOOP_CONN_F_CONNECTING | LOOP_CONN_F_RX_PAUSED |
			    LOOP_CONN_F_RX_EOF | LOOP_CONN_F_FAILED |
			    LOOP_CONN_F_CLOSING)) == 0 &&
	       c->rx_stash.len == 0;
}

size_t loop_conn_queued(const struct loop_conn *c)
{
	return (size_t)c->out.b.len + c->queue.b.len;
}

void loop_conn_rx_data(struct loop_conn *c, const uint8_t *data, size_t len,
		       uint8_t type)
{
	if (c->flags & (LOOP_CONN_F_CLOSING | LOOP_CONN_F_FAILED))
		return;
	if ((c->flags & LOOP_CONN_F_RX_PAUSED) || c->rx_stash.len > 0) {
		/* Arrived after a pause was asked (the receive is being
		 * cancelled): keep it, in order, for the resume. */
		if (c->rx_stash.len == 0)
			c->rx_stash_type = type;
		if (buf_append(&c->rx_stash, data, len) < 0)
			loop_conn_fail(c, -ENOMEM);
		else if (!(c->flags & LOOP_CONN_F_RX_PAUSED))
			loop_obj_queue(&c->obj);
		return;
	}
	loop_conn_emit(c, LOOP_CONN_EV_RECV, data, len, 0, type);
}

void loop_conn_rx_eof(struct loop_conn *c)
{
	if (c->flags & (LOOP_CONN_F_RX_EOF | LOOP_CONN_F_FAILED))
		return;
	c->flags |= LOOP_CONN_F_RX_EOF;
	if ((c->flags & LOOP_CONN_F_RX_PAUSED) || c->rx_stash.len > 0) {
		c->flags |= LOOP_CONN_F_EOF_PENDING;
		loop_obj_queue(&c->obj);
		return;
	}
	loop_conn_emit(c, LOOP_CONN_EV_EOF, NULL, 0, 0, 0);
}

void loop_conn_fail(struct loop_conn *c, int err)
{
	if (c->flags & LOOP_CONN_F_FAILED)
		return;
	c->flags |= LOOP_CONN_F_FAILED;
	c->err = err;
	c->pend |= LOOP_CONN_P_ERROR;
	loop_obj_queue(&c->obj);
}

/* ---- send queue ---- */

static int loop_outq_seg_push(struct loop_outq *q, uint32_t len, uint8_t type)
{
	struct loop_seg *s;

	if (q->nseg == q->seg_cap) {
		if (q->seg_head > 0) {
			memmove(q->segs, q->segs + q->seg_head,
				(size_t)(q->nseg - q->seg_head) * sizeof(*s));
			q->nseg -= q->seg_head;
			q->seg_head = 0;
		} else {
			uint32_t ncap = q->seg_cap != 0 ? q->seg_cap * 2 : 4;

			s = realloc(q->segs, (size_t)ncap * sizeof(*s));
			if (s == NULL)
				return -ENOMEM;
			q->segs = s;
			q->seg_cap = ncap;
		}
	}
	q->segs[q->nseg].len = len;
	q->segs[q->nseg].type = type;
	q->nseg++;
	return 0;
}

static int loop_outq_append(struct loop_outq *q, const void *p, size_t len,
			    uint8_t type)
{
	struct loop_seg *last;
	int r;

	if (type == 0 && q->nseg == 0)
		return buf_append(&q->b, p, len);
	if (q->nseg == 0 && q->b.len > 0) {
		r = loop_outq_seg_push(q, q->b.len, 0);
		if (r < 0)
			return r;
	}
	/* Room for the new run before the bytes go in, so a failure
	 * leaves the queue as it was. */
	last = q->nseg > q->seg_head ? &q->segs[q->nseg - 1] : NULL;
	if (type != 0 || last == NULL || last->type != 0) {
		r = loop_outq_seg_push(q, 0, type);
		if (r < 0)
			return r;
		last = &q->segs[q->nseg - 1];
	}
	r = buf_append(&q->b, p, len);
	if (r < 0) {
		if (last->len == 0)
			q->nseg--;
		return r;
	}
	last->len += (uint32_t)len;
	return 0;
}

static void loop_outq_consume(struct loop_outq *q, size_t n)
{
	buf_consume(&q->b, n);
	while (n > 0 && q->seg_head < q->nseg) {
		struct loop_seg *s = &q->segs[q->seg_head];
		size_t k = n < s->len ? n : s->len;

		s->len -= (uint32_t)k;
		n -= k;
		if (s->len == 0)
			q->seg_head++;
	}
	if (q->seg_head == q->nseg)
		q->seg_head = q->nseg = 0;
}

static void loop_outq_free(struct loop_outq *q)
{
	buf_free(&q->b);
	free(q->segs);
	q->segs = NULL;
	q->nseg = q->seg_head = q->seg_cap = 0;
}

size_t loop_conn_tx_next(struct loop_conn *c, const uint8_t **p_r,
			 uint8_t *type_r)
{
	struct loop_outq tmp;

	if (c->out.b.len == 0 && c->queue.b.len > 0) {
		tmp = c->out;
		c->out = c->queue;
		c->queue = tmp;
	}
	*p_r = buf_head(&c->out.b);
	if (c->out.nseg == 0) {
		*type_r = 0;
		return c->out.b.len;
	}
	*type_r = c->out.segs[c->out.seg_head].type;
	return c->out.segs[c->out.seg_head].len;
}

void loop_conn_tx_done(struct loop_conn *c, size_t n)
{
	loop_outq_consume(&c->out, n);
	if (c->out.b.len > 0 || c->queue.b.len > 0)
		return;
	if (c->out.b.cap > LOOP_OUT_KEEP)
		buf_free(&c->out.b);
	if (c->queue.b.cap > LOOP_OUT_KEEP)
		buf_free(&c->queue.b);
	loop_conn_emit(c, LOOP_CONN_EV_SENT, NULL, 0, 0, 0);
}

void loop_conn_tx_record_msg(struct loop_conn *c, const uint8_t *p, size_t len,
			     uint8_t type)
{
	struct cmsghdr *cm;

	memset(&c->tx_msg, 0, sizeof(c->tx_msg));
	memset(&c->tx_cmsg, 0, sizeof(c->tx_cmsg));
	c->tx_iov.iov_base = (void *)p;
	c->tx_iov.iov_len = len;
	c->tx_msg.msg_iov = &c->tx_iov;
	c->tx_msg.msg_iovlen = 1;
	c->tx_msg.msg_control = c->tx_cmsg.buf;
	c->tx_msg.msg_controllen = CMSG_SPACE(sizeof(uint8_t));
	cm = CMSG_FIRSTHDR(&c->tx_msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(uint8_t));
	*CMSG_DATA(cm) = type;
}

uint8_t loop_tls_record_type(const struct msghdr *msg)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL;
	     cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		if (cm->cmsg_level == SOL_TLS &&
		    cm->cmsg_type == TLS_GET_RECORD_TYPE)
			return *CMSG_DATA(cm);
	}
	return 23; /* application data */
}

/* ---- connection life cycle ---- */

static void loop_conn_destroy(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;

	loop_slot_release(l, &c->obj);
	l->nconns--;
	if (c->flags & LOOP_CONN_F_OUTBOUND)
		l->nconns_out--;
	loop_outq_free(&c->out);
	loop_outq_free(&c->queue);
	buf_free(&c->rx_stash);
	free(c->connect_addr);
	free(c->tlsrx);
	if (c->obj.queued) {
		/* Still linked on a pending list (the current run's or the
		 * next one's): the run frees it when it gets there. */
		c->obj.zombie = true;
		return;
	}
	free(c);
}

static struct loop_conn *loop_conn_alloc(struct loop *l, int fd,
					 loop_conn_fn *fn, void *arg)
{
	struct loop_conn *c;
	int one = 1;

	/* Replies and relayed IMAP lines are small and latency-bound: no
	 * Nagle delay behind an unacknowledged segment. Fails harmlessly
	 * (ENOTSUP) on unix sockets. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->nconns >= l->max_conns)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (loop_slot_alloc(l, &c->obj) < 0) {
		free(c);
		return NULL;
	}
	l->nconns++;
	c->obj.kind = LOOP_OBJ_CONN;
	c->fd = fd;
	c->fn = fn;
	c->arg = arg;
	c->rx_op = LOOP_OP_NONE;
	buf_init(&c->out.b, l->send_max);
	buf_init(&c->queue.b, l->send_max);
	buf_init(&c->rx_stash, 0);
	c->flags = LOOP_CONN_F_RX_READY;
	return c;
}

#define LOOP_STASH_PIECE (64u * 1024u)

/* Deliver stashed input and a deferred EOF once not paused. */
static void loop_conn_rx_flush(struct loop_conn *c)
{
	struct buf stash;

	if (c->flags &
	    (LOOP_CONN_F_RX_PAUSED | LOOP_CONN_F_CLOSING | LOOP_CONN_F_FAILED))
		return;
	if (c->rx_stash.len > 0 && !(c->flags & LOOP_CONN_F_TLS_RECORDS)) {
		/* In pieces, so a receiver that pauses again gets no more
		 * than one piece past its limit (io_uring may have stashed
		 * a whole socket buffer while the pause took effect). */
		stash = c->rx_stash;
		buf_init(&c->rx_stash, 0);
		while (stash.len > 0 && !(c->flags & (LOOP_CONN_F_RX_PAUSED |
						      LOOP_CONN_F_CLOSING |
						      LOOP_CONN_F_FAILED))) {
			size_t n = stash.len < LOOP_STASH_PIECE
					   ? stash.len
					   : LOOP_STASH_PIECE;

			loop_conn_emit(c, LOOP_CONN_EV_RECV, buf_head(&stash),
				       n, 0, 0);
			buf_consume(&stash, n);
		}
		if (stash.len > 0 && c->rx_stash.len == 0 &&
		    !(c->flags & (LOOP_CONN_F_CLOSING | LOOP_CONN_F_FAILED))) {
			c->rx_stash = stash; /* paused again: keep the rest */
			c->rx_stash_type = 0;
		} else {
			if (stash.len > 0 &&
			    buf_append(&stash, buf_head(&c->rx_stash),
				       c->rx_stash.len) == 0) {
				/* Not reached today: nothing is stashed
				 * during a callback. Keep the order. */
				buf_free(&c->rx_stash);
				c->rx_stash = stash;
			} else {
				buf_free(&stash);
			}
		}
	} else if (c->rx_stash.len > 0) {
		stash = c->rx_stash;
		buf_init(&c->rx_stash, 0);
		loop_conn_emit(c, LOOP_CONN_EV_RECV, buf_head(&stash),
			       stash.len, 0, c->rx_stash_type);
		buf_free(&stash);
	}
	if ((c->flags & LOOP_CONN_F_EOF_PENDING) && c->rx_stash.len == 0 &&
	    !(c->flags & LOOP_CONN_F_RX_PAUSED)) {
		c->flags &= ~LOOP_CONN_F_EOF_PENDING;
		loop_conn_emit(c, LOOP_CONN_EV_EOF, NULL, 0, 0, 0);
	}
}

static void loop_conn_process(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;

	if (c->pend & LOOP_CONN_P_CONNECTED) {
		c->pend &= ~LOOP_CONN_P_CONNECTED;
		loop_conn_emit(c, LOOP_CONN_EV_CONNECTED, NULL, 0, 0, 0);
	}
	if (c->pend & LOOP_CONN_P_ERROR) {
		c->pend &= ~LOOP_CONN_P_ERROR;
		loop_conn_emit(c, LOOP_CONN_EV_ERROR, NULL, 0, c->err, 0);
	}
	loop_conn_rx_flush(c);
	l->ops->conn_sync(c);
	if ((c->flags & LOOP_CONN_F_CLOSING) && c->fd < 0 &&
	    c->obj.inflight == 0) {
		loop_conn_emit(c, LOOP_CONN_EV_CLOSED, NULL, 0, 0, 0);
		loop_conn_destroy(c);
	}
}

struct loop_conn *loop_conn_new(struct loop *l, int fd, loop_conn_fn *fn,
				void *arg)
{
	struct loop_conn *c = loop_conn_alloc(l, fd, fn, arg);

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	if (l->ops->conn_attach(c) < 0) {
		loop_conn_destroy(c);
		close(fd);
		return NULL;
	}
	loop_obj_queue(&c->obj);
	return c;
}

int loop_conn_connect(struct loop *l, const struct sockaddr *addr,
		      socklen_t addr_len, loop_conn_fn *fn, void *arg,
		      struct loop_conn **c_r)
{
	struct loop_conn *c = NULL;
	int fd, r;

	if (addr_len == 0 || addr_len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	c = loop_conn_alloc(l, fd, fn, arg);
	if (c == NULL) {
		r = -ENOMEM;
		goto out;
	}
	c->connect_addr = calloc(1, sizeof(*c->connect_addr));
	if (c->connect_addr == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(c->connect_addr, addr, addr_len);
	c->connect_len = addr_len;
	c->flags |= LOOP_CONN_F_CONNECTING | LOOP_CONN_F_OUTBOUND;
	l->nconns_out++;
	r = l->ops->conn_attach(c);
	if (r < 0)
		goto out;
	loop_obj_queue(&c->obj);
	*c_r = c;
	return 0;
out:
	if (c != NULL)
		loop_conn_destroy(c);
	close(fd);
	return r;
}

void loop_conn_set_handler(struct loop_conn *c, loop_conn_fn *fn, void *arg)
{
	c->fn = fn;
	c->arg = arg;
}

static int loop_conn_enqueue(struct loop_conn *c, uint8_t type,
			     const void *data, size_t len)
{
	struct loop_outq *q;
	int r;

	if (c->flags & (LOOP_CONN_F_CLOSING | LOOP_CONN_F_FAILED))
		return -EPIPE;
	if (len == 0)
		return 0;
	if (loop_conn_queued(c) + len > c->obj.loop->send_max)
		return -ENOBUFS;
	/* out is frozen while a send of it is in flight, and queue must
	 * stay behind whatever out still holds. */
	q = (c->flags & LOOP_CONN_F_TX_ARMED) || c->queue.b.len > 0 ? &c->queue
								    : &c->out;
	r = loop_outq_append(q, data, len, type);
	if (r == 0)
		loop_obj_queue(&c->obj);
	return r;
}

int loop_conn_send(struct loop_conn *c, const void *data, size_t len)
{
	return loop_conn_enqueue(c, 0, data, len);
}

int loop_conn_send_tls_record(struct loop_conn *c, uint8_t type,
			      const void *data, size_t len)
{
	if (type == 0)
		return -EINVAL;
	return loop_conn_enqueue(c, type, data, len);
}

size_t loop_conn_pending(const struct loop_conn *c)
{
	return loop_conn_queued(c);
}

void loop_conn_recv_pause(struct loop_conn *c)
{
	if (c->flags & LOOP_CONN_F_RX_PAUSED)
		return;
	c->flags |= LOOP_CONN_F_RX_PAUSED;
	loop_obj_queue(&c->obj);
}

void loop_conn_recv_resume(struct loop_conn *c)
{
	if (!(c->flags & LOOP_CONN_F_RX_PAUSED))
		return;
	c->flags &= ~LOOP_CONN_F_RX_PAUSED;
	c->flags |= LOOP_CONN_F_RX_READY;
	loop_obj_queue(&c->obj);
}

void loop_conn_set_tls_records(struct loop_conn *c)
{
	if (c->flags & LOOP_CONN_F_TLS_RECORDS)
		return;
	c->flags |= LOOP_CONN_F_TLS_RECORDS | LOOP_CONN_F_RX_READY;
	loop_obj_queue(&c->obj);
}

void loop_conn_close(struct loop_conn *c, bool flush)
{
	if (c->flags & LOOP_CONN_F_CLOSING) {
		/* A second close without flush cuts a flush short. */
		if (!flush && (c->flags & LOOP_CONN_F_FLUSHING)) {
			c->flags &= ~LOOP_CONN_F_FLUSHING;
			loop_obj_queue(&c->obj);
		}
		return;
	}
	c->flags |= LOOP_CONN_F_CLOSING;
	if (flush && loop_conn_queued(c) > 0 &&
	    !(c->flags & LOOP_CONN_F_FAILED))
		c->flags |= LOOP_CONN_F_FLUSHING;
	c->pend = 0;
	loop_obj_queue(&c->obj);
}

uint64_t loop_conn_id(const struct loop_conn *c)
{
	return ((uint64_t)c->obj.loop->worker_id << 56) |
	       ((uint64_t)c->obj.gen << 32) | c->obj.slot;
}

struct loop_conn *loop_conn_find(struct loop *l, uint64_t id)
{
	uint32_t gen = (uint32_t)(id >> 32) & LOOP_GEN_MASK;
	uint32_t slot = (uint32_t)id;
	struct loop_obj *o;

	if ((id >> 56) != l->worker_id)
		return NULL;
	o = loop_obj_lookup(l, ((uint64_t)slot << 32) | ((uint64_t)gen << 8));
	if (o == NULL || o->kind != LOOP_OBJ_CONN)
		return NULL;
	if (((struct loop_conn *)o)->flags & LOOP_CONN_F_CLOSING)
		return NULL;
	return (struct loop_conn *)o;
}

int loop_conn_fd(const struct loop_conn *c)
{
	return c->fd;
}

struct loop *loop_conn_loop(const struct loop_conn *c)
{
	return c->obj.loop;
}

unsigned loop_conn_count(const struct loop *l)
{
	return l->nconns;
}

unsigned loop_conn_count_inbound(const struct loop *l)
{
	return l->nconns - l->nconns_out;
}

void loop_conn_close_all(struct loop *l)
{
	for (uint32_t i = 0; i < l->nslots; i++) {
		struct loop_obj *o = l->slots[i].obj;
		struct loop_conn *c = (struct loop_conn *)o;

		if (o != NULL && o->kind == LOOP_OBJ_CONN &&
		    !(c->flags & LOOP_CONN_F_CLOSING))
			loop_conn_close(c, false);
	}
}

/* ---- listeners ---- */

void loop_listener_fire(struct loop_listener *li, int fd,
			const struct sockaddr *peer, socklen_t peer_len)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (li->obj.dead) {
		close(fd);
		return;
	}
	if (peer == NULL) {
		memset(&ss, 0, sizeof(ss));
		if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
			len = 0;
		peer = (struct sockaddr *)&ss;
		peer_len = len;
	}
	li->fn(li, fd, peer, peer_len, li->arg);
}

static void loop_listener_backoff_end(struct loop_timer *t, void *arg)
{
	struct loop_listener *li = arg;

	(void)t;
	li->backoff = false;
	loop_obj_queue(&li->obj);
}

static void loop_listener_free(struct loop_listener *li)
{
	struct loop *l = li->obj.loop;

	loop_timer_disarm(l, &li->backoff_timer);
	loop_slot_release(l, &li->obj);
	free(li);
}

static void loop_listener_process(struct loop_listener *li)
{
	struct loop *l = li->obj.loop;

	(void)l->ops->listener_sync(li);
	if (li->obj.dead && li->obj.inflight == 0)
		loop_listener_free(li);
	else if (li->backoff && !loop_timer_armed(&li->backoff_timer))
		loop_timer_arm(l, &li->backoff_timer, LOOP_LISTENER_BACKOFF_MS);
}

struct loop_listener *loop_listen(struct loop *l, int lfd, loop_accept_fn *fn,
				  void *arg)
{
	struct loop_listener *li;
	socklen_t len = sizeof(int);
	int r, on = 0;

	if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 ||
	    on == 0) {
		log_err("loop: fd %d is not a listening socket", lfd);
		return NULL;
	}
	li = calloc(1, sizeof(*li));
	if (li == NULL)
		return NULL;
	if (loop_slot_alloc(l, &li->obj) < 0) {
		free(li);
		return NULL;
	}
	li->obj.kind = LOOP_OBJ_LISTENER;
	li->fd = lfd;
	li->fn = fn;
	li->arg = arg;
	loop_timer_init(&li->backoff_timer, loop_listener_backoff_end, li);
	r = l->ops->listener_sync(li);
	if (r < 0) {
		log_err("loop: cannot accept on fd %d: %s", lfd, strerror(-r));
		loop_listener_free(li);
		return NULL;
	}
	return li;
}

void loop_listener_stop(struct loop_listener **lip)
{
	struct loop_listener *li = *lip;

	if (li == NULL)
		return;
	*lip = NULL;
	li->obj.dead = true;
	(void)li->obj.loop->ops->listener_sync(li);
	loop_obj_queue(&li->obj);
}

/* ---- foreign polls ---- */

unsigned loop_poll_to_sys(unsigned events)
{
	unsigned r = 0;

	if (events & LOOP_POLL_IN)
		r |= POLLIN;
	if (events & LOOP_POLL_OUT)
		r |= POLLOUT;
	return r;
}

unsigned loop_poll_from_sys(unsigned revents, unsigned wanted)
{
	unsigned r = 0;

	if (revents & POLLIN)
		r |= LOOP_POLL_IN;
	if (revents & POLLOUT)
		r |= LOOP_POLL_OUT;
	if (revents & (POLLERR | POLLHUP))
		r |= LOOP_POLL_ERR;
	/* A hang-up is readable: the reader sees EOF. */
	if ((revents & (POLLHUP | POLLRDHUP)) && (wanted & LOOP_POLL_IN))
		r |= LOOP_POLL_IN;
	return r & (wanted | LOOP_POLL_ERR);
}

void loop_poll_fire(struct loop_poll *p, unsigned revents)
{
	struct loop *l = p->obj.loop;

	if (p->obj.dead || revents == 0)
		return;
	p->fn(p, revents, p->arg);
	/* io_uring's multishot poll reports readiness changes only; the
	 * caller was promised level-triggered callbacks. */
	if (l->backend == LOOP_BACKEND_URING && !p->internal && !p->obj.dead) {
		p->recheck = true;
		loop_obj_queue(&p->obj);
	}
}

static void loop_poll_free(struct loop_poll *p)
{
	loop_slot_release(p->obj.loop, &p->obj);
	free(p);
}

static void loop_poll_process(struct loop_poll *p)
{
	struct loop *l = p->obj.loop;
	struct pollfd pfd;

	(void)l->ops->poll_sync(p);
	if (p->obj.dead) {
		if (p->obj.inflight == 0)
			loop_poll_free(p);
		return;
	}
	if (!p->recheck)
		return;
	p->recheck = false;
	if (p->events == 0)
		return;
	pfd.fd = p->fd;
	pfd.events = (short)loop_poll_to_sys(p->events);
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) > 0 && !(pfd.revents & POLLNVAL))
		loop_poll_fire(p, loop_poll_from_sys((unsigned)pfd.revents,
						     p->events));
}

struct loop_poll *loop_poll_add(struct loop *l, int fd, unsigned events,
				loop_poll_fn *fn, void *arg)
{
	struct loop_poll *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (loop_slot_alloc(l, &p->obj) < 0) {
		free(p);
		return NULL;
	}
	p->obj.kind = LOOP_OBJ_POLL;
	p->fd = fd;
	p->events = events & (LOOP_POLL_IN | LOOP_POLL_OUT);
	p->op = LOOP_OP_POLL;
	p->fn = fn;
	p->arg = arg;
	if (l->ops->poll_sync(p) < 0) {
		loop_poll_free(p);
		return NULL;
	}
	return p;
}

int loop_poll_modify(struct loop_poll *p, unsigned events)
{
	p->events = events & (LOOP_POLL_IN | LOOP_POLL_OUT);
	p->failed = false;
	return p->obj.loop->ops->poll_sync(p);
}

void loop_poll_remove(struct loop_poll **pp)
{
	struct loop_poll *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	p->obj.dead = true;
	(void)p->obj.loop->ops->poll_sync(p);
	loop_obj_queue(&p->obj);
}

/* ---- pending run ---- */

static int loop_pending_run(struct loop *l)
{
	struct loop_obj *o = l->pend_head, *next;
	int n = 0;

	l->pend_head = l->pend_tail = NULL;
	for (; o != NULL; o = next) {
		next = o->pend_next;
		o->queued = false;
		if (o->zombie) {
			free(o); /* a conn destroyed while it was queued */
			continue;
		}
		switch (o->kind) {
		case LOOP_OBJ_CONN:
			loop_conn_process((struct loop_conn *)o);
			break;
		case LOOP_OBJ_LISTENER:
			loop_listener_process((struct loop_listener *)o);
			break;
		case LOOP_OBJ_POLL:
			loop_poll_process((struct loop_poll *)o);
			break;
		}
		n++;
	}
	return n;
}

/* ---- cross-thread messages ---- */

static void loop_post_drain(struct loop_poll *p, unsigned revents, void *arg)
{
	struct loop *l = arg;
	struct loop_post_node *n, *next;
	eventfd_t v;

	(void)p;
	(void)revents;
	(void)eventfd_read(l->evfd, &v);
	pthread_mutex_lock(&l->post_mtx);
	n = l->post_head;
	l->post_head = l->post_tail = NULL;
	l->post_signaled = false;
	pthread_mutex_unlock(&l->post_mtx);
	for (; n != NULL; n = next) {
		next = n->next;
		n->fn(n->arg);
		free(n);
	}
}

int loop_post(struct loop *l, loop_post_fn *fn, void *arg)
{
	struct loop_post_node *n = malloc(sizeof(*n));
	bool wake;

	if (n == NULL)
		return -ENOMEM;
	n->next = NULL;
	n->fn = fn;
	n->arg = arg;
	pthread_mutex_lock(&l->post_mtx);
	if (l->post_tail != NULL)
		l->post_tail->next = n;
	else
		l->post_head = n;
	l->post_tail = n;
	wake = !l->post_signaled;
	l->post_signaled = true;
	pthread_mutex_unlock(&l->post_mtx);
	if (wake)
		(void)eventfd_write(l->evfd, 1);
	return 0;
}

void loop_stop(struct loop *l)
{
	atomic_store(&l->stop, true);
	(void)eventfd_write(l->evfd, 1);
}

/* ---- running ---- */

int loop_run_once(struct loop *l, int timeout_ms)
{
	int n, r, t;

	/* The caller may have been away (a loop built on one thread and
	 * run later, or run_once called after other work): what the
	 * pending run arms must see the time it runs at. */
	loop_clock_update(l);
	n = loop_pending_run(l);
	if (n > 0 || l->pend_head != NULL)
		timeout_ms = 0;
	t = loop_timers_wait_ms(l);
	if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
		timeout_ms = t;
	/* The backend updated the clock when its wait returned; again
	 * here so the timers due after a long dispatch run now. */
	r = l->ops->wait(l, timeout_ms);
	loop_clock_update(l);
	if (r < 0)
		return r;
	n += r;
	n += loop_timers_run(l);
	n += loop_pending_run(l);
	return n;
}

int loop_run(struct loop *l)
{
	int r = 0;

	while (!atomic_load(&l->stop)) {
		r = loop_run_once(l, -1);
		if (r < 0)
			break;
		r = 0;
	}
	atomic_store(&l->stop, false);
	return r;
}

/* ---- create and free ---- */

static int loop_opts_check(const struct loop_opts *o)
{
	if (o->worker_id > 255)
		return -EINVAL;
	if (o->buf_count != 0 &&
	    ((o->buf_count & (o->buf_count - 1)) != 0 || o->buf_count > 32768))
		return -EINVAL;
	if (o->buf_size != 0 && (o->buf_size < 64 || o->buf_size > (1u << 24)))
		return -EINVAL;
	if (o->max_conns > (1u << 30))
		return -EINVAL;
	return 0;
}

static int loop_backend_start(struct loop *l, enum loop_backend want)
{
	const struct loop_probe *p;
	int r;

	if (want == LOOP_BACKEND_EPOLL)
		goto epoll;
	p = loop_probe_kernel();
	if (!loop_uring_usable(p)) {
		if (want == LOOP_BACKEND_URING)
			return p->uring_errno != 0 ? -p->uring_errno
						   : -EOPNOTSUPP;
		goto epoll;
	}
	l->ops = &loop_uring_ops;
	l->backend = LOOP_BACKEND_URING;
	r = l->ops->init(l);
	if (r == 0 || want == LOOP_BACKEND_URING)
		return r;
	log_warn("loop: io_uring setup failed (%s), using epoll", strerror(-r));
epoll:
	l->ops = &loop_epoll_ops;
	l->backend = LOOP_BACKEND_EPOLL;
	return l->ops->init(l);
}

int loop_new(const struct loop_opts *opts, struct loop **loop_r)
{
	struct loop *l;
	int r;

	r = loop_opts_check(opts);
	if (r < 0)
		return r;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->worker_id = opts->worker_id;
	l->uring_debian12 = opts->uring_debian12;
	l->buf_count =
		opts->buf_count ? opts->buf_count : LOOP_DEFAULT_BUF_COUNT;
	l->buf_size = opts->buf_size ? opts->buf_size : LOOP_DEFAULT_BUF_SIZE;
	l->max_conns =
		opts->max_conns ? opts->max_conns : LOOP_DEFAULT_MAX_CONNS;
	l->send_max = opts->send_max ? opts->send_max : LOOP_DEFAULT_SEND_MAX;
	l->free_head = LOOP_SLOT_NONE;
	l->now_ms = loop_clock_ms();
	l->evfd = -1;
	atomic_init(&l->stop, false);
	pthread_mutex_init(&l->post_mtx, NULL);
	r = loop_backend_start(l, opts->backend);
	if (r < 0) {
		l->ops = NULL;
		goto fail;
	}
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->evfd < 0) {
		r = -errno;
		goto fail;
	}
	l->evpoll = loop_poll_add(l, l->evfd, LOOP_POLL_IN, loop_post_drain, l);
	if (l->evpoll == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	l->evpoll->internal = true;
	*loop_r = l;
	return 0;
fail:
	loop_free(&l);
	return r;
}

void loop_free(struct loop **lp)
{
	struct loop *l = *lp;
	struct loop_post_node *n, *next;

	if (l == NULL)
		return;
	*lp = NULL;
	if (l->ops != NULL)
		l->ops->fini(l);
	/* Forget the pending list; free what was destroyed while on it. */
	for (struct loop_obj *o = l->pend_head, *on; o != NULL; o = on) {
		on = o->pend_next;
		o->queued = false;
		if (o->zombie)
			free(o);
	}
	l->pend_head = l->pend_tail = NULL;
	for (uint32_t i = 0; i < l->nslots; i++) {
		struct loop_obj *o = l->slots[i].obj;

		if (o == NULL)
			continue;
		switch (o->kind) {
		case LOOP_OBJ_CONN: {
			struct loop_conn *c = (struct loop_conn *)o;

			if (c->fd >= 0)
				close(c->fd);
			loop_conn_destroy(c);
			break;
		}
		case LOOP_OBJ_LISTENER:
			loop_listener_free((struct loop_listener *)o);
			break;
		case LOOP_OBJ_POLL:
			loop_poll_free((struct loop_poll *)o);
			break;
		}
	}
	for (n = l->post_head; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	if (l->evfd >= 0)
		close(l->evfd);
	pthread_mutex_destroy(&l->post_mtx);
	free(l->heap);
	free(l->slots);
	free(l);
}
