/* core/loop_epoll: the epoll backend, for kernels or sandboxes without a
 * usable io_uring. Connections are edge-triggered with non-blocking
 * recv/send loops (bounded per turn for fairness); listeners and foreign
 * polls are level-triggered. Reads use one per-loop buffer of the same
 * size as the io_uring provided buffers. */
#include "core/loop-int.h"

/* system */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* project */
#include "core/log.h"

#define EPOLL_EVENTS     256
#define EPOLL_RX_BUDGET  16 /* reads per connection per turn */
#define EPOLL_ACCEPT_MAX 64 /* accepts per listener per turn */

struct epoll_be {
	int epfd;
	uint8_t *scratch; /* buf_size bytes */
	struct epoll_event evs[EPOLL_EVENTS];
};

/* ---- connections ---- */

static int epoll_conn_attach(struct loop_conn *c)
{
	struct epoll_be *e = c->obj.loop->be;
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u64 = loop_ud(&c->obj, 0);
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return -errno;
	return 0;
}

static void epoll_rx(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;
	struct epoll_be *e = l->be;
	union {
		struct cmsghdr align;
		uint8_t buf[64];
	} cbuf;
	struct msghdr msg;
	struct iovec iov;
	int budget = EPOLL_RX_BUDGET;
	uint8_t type;
	ssize_t n;

	while (loop_conn_want_rx(c) && (c->flags & LOOP_CONN_F_RX_READY)) {
		if (budget-- == 0) {
			loop_obj_queue(&c->obj); /* more next turn */
			return;
		}
		type = 0;
		if (c->flags & LOOP_CONN_F_TLS_RECORDS) {
			memset(&msg, 0, sizeof(msg));
			iov.iov_base = e->scratch;
			iov.iov_len = l->buf_size;
			msg.msg_iov = &iov;
			msg.msg_iovlen = 1;
			msg.msg_control = cbuf.buf;
			msg.msg_controllen = sizeof(cbuf.buf);
			n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
			if (n > 0)
				type = loop_tls_record_type(&msg);
		} else {
			n = recv(c->fd, e->scratch, l->buf_size, MSG_DONTWAIT);
		}
		if (n > 0) {
			loop_conn_rx_data(c, e->scratch, (size_t)n, type);
		} else if (n == 0) {
			loop_conn_rx_eof(c);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->flags &= ~LOOP_CONN_F_RX_READY;
		} else if (errno != EINTR) {
			loop_conn_fail(c, -errno);
		}
	}
}

static void epoll_tx(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;
	const uint8_t *p;
	uint8_t type;
	ssize_t r;
	size_t n;

	while (!(c->flags & (LOOP_CONN_F_TX_BLOCKED | LOOP_CONN_F_FAILED |
			     LOOP_CONN_F_CONNECTING))) {
		/* SENT's handler may have closed without flush. */
		if ((c->flags & LOOP_CONN_F_CLOSING) &&
		    !(c->flags & LOOP_CONN_F_FLUSHING))
			return;
		n = loop_conn_tx_next(c, &p, &type);
		if (n == 0)
			return;
		if (type == 0) {
			r = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			loop_conn_tx_record_msg(c, p, n, type);
			r = sendmsg(c->fd, &c->tx_msg,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		l->stats.sends++;
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				c->flags |= LOOP_CONN_F_TX_BLOCKED;
			else if (errno != EINTR)
				loop_conn_fail(c, -errno);
			continue;
		}
		if ((size_t)r < n)
			l->stats.partial_sends++;
		loop_conn_tx_done(c, (size_t)r);
	}
}

/* Drive a non-blocking connect; true once connected. */
static bool epoll_connect(struct loop_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(int);
	int err = 0;

	if (!(c->flags & LOOP_CONN_F_CONN_ARMED)) {
		c->flags |= LOOP_CONN_F_CONN_ARMED;
		if (connect(c->fd, (struct sockaddr *)c->connect_addr,
			    c->connect_len) == 0)
			goto connected;
		if (errno != EINPROGRESS && errno != EINTR) {
			loop_conn_fail(c, -errno);
			return false;
		}
		c->flags |= LOOP_CONN_F_TX_BLOCKED; /* until EPOLLOUT */
		return false;
	}
	if (c->flags & LOOP_CONN_F_TX_BLOCKED)
		return false;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY) {
		c->flags |= LOOP_CONN_F_TX_BLOCKED;
		return false;
	}
	if (err != 0) {
		loop_conn_fail(c, -err);
		return false;
	}
	/* A wake-up from before connect() (a fresh socket reports HUP) must
	 * not pass for completion. */
	len = sizeof(ss);
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0) {
		if (errno == ENOTCONN) {
			c->flags |= LOOP_CONN_F_TX_BLOCKED;
			return false;
		}
		loop_conn_fail(c, -errno);
		return false;
	}
connected:
	c->flags &= ~LOOP_CONN_F_CONNECTING;
	c->flags |= LOOP_CONN_F_RX_READY;
	free(c->connect_addr);
	c->connect_addr = NULL;
	loop_conn_emit(c, LOOP_CONN_EV_CONNECTED, NULL, 0, 0, 0);
	return true;
}

static void epoll_conn_sync(struct loop_conn *c)
{
	struct epoll_be *e = c->obj.loop->be;

	if (c->fd < 0)
		return;
	if (c->flags & LOOP_CONN_F_CLOSING) {
		if (c->flags & LOOP_CONN_F_FLUSHING)
			epoll_tx(c);
		if ((c->flags & LOOP_CONN_F_FLUSHING) &&
		    loop_conn_queued(c) > 0 && !(c->flags & LOOP_CONN_F_FAILED))
			return; /* EPOLLOUT brings us back */
		c->flags &= ~LOOP_CONN_F_FLUSHING;
		(void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		(void)shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
		c->fd = -1;
		return;
	}
	if ((c->flags & LOOP_CONN_F_CONNECTING) && !epoll_connect(c))
		return;
	epoll_rx(c);
	if (!(c->flags & LOOP_CONN_F_CLOSING))
		epoll_tx(c);
}

static void epoll_conn_event(struct loop_conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->flags |= LOOP_CONN_F_RX_READY;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->flags &= ~LOOP_CONN_F_TX_BLOCKED;
	loop_obj_queue(&c->obj);
}

/* ---- listeners ---- */

static int epoll_listener_sync(struct loop_listener *li)
{
	struct epoll_be *e = li->obj.loop->be;
	bool want = !li->obj.dead && !li->backoff;
	struct epoll_event ev;

	if (want == li->armed)
		return 0;
	if (!want) {
		(void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, li->fd, NULL);
		li->armed = false;
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	/* Workers often share one listening socket: wake one of them. */
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u64 = loop_ud(&li->obj, 0);
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, li->fd, &ev) < 0)
		return -errno;
	li->armed = true;
	return 0;
}

static void epoll_listener_event(struct loop_listener *li)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	for (int i = 0; i < EPOLL_ACCEPT_MAX && !li->obj.dead; i++) {
		len = sizeof(ss);
		fd = accept4(li->fd, (struct sockaddr *)&ss, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			loop_listener_fire(li, fd, (struct sockaddr *)&ss, len);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		/* EMFILE and friends: level-triggered would spin. */
		log_warn("loop: accept on fd %d: %s", li->fd, strerror(errno));
		li->backoff = true;
		(void)epoll_listener_sync(li);
		loop_obj_queue(&li->obj);
		return;
	}
}

/* ---- foreign polls ---- */

static int epoll_poll_sync(struct loop_poll *p)
{
	struct epoll_be *e = p->obj.loop->be;
	unsigned want = p->obj.dead || p->failed ? 0 : p->events;
	struct epoll_event ev;

	if (want == p->armed_events)
		return 0;
	if (want == 0) {
		/* Removed, not just masked: ERR/HUP would still fire. */
		(void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		p->armed_events = 0;
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = loop_poll_to_sys(want);
	ev.data.u64 = loop_ud(&p->obj, 0);
	if (epoll_ctl(e->epfd, p->armed_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		      p->fd, &ev) < 0)
		return -errno;
	p->armed_events = want;
	return 0;
}

/* ---- wait ---- */

static int epoll_wait_dispatch(struct loop *l, int timeout_ms)
{
	struct epoll_be *e = l->be;
	struct loop_obj *o;
	int n;

	n = epoll_wait(e->epfd, e->evs, EPOLL_EVENTS, timeout_ms);
	loop_clock_update(l);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint32_t events = e->evs[i].events;

		o = loop_obj_lookup(l, e->evs[i].data.u64);
		if (o == NULL || o->dead) {
			l->stats.stale++;
			continue;
		}
		switch (o->kind) {
		case LOOP_OBJ_CONN:
			epoll_conn_event((struct loop_conn *)o, events);
			break;
		case LOOP_OBJ_LISTENER:
			epoll_listener_event((struct loop_listener *)o);
			break;
		case LOOP_OBJ_POLL: {
			struct loop_poll *p = (struct loop_poll *)o;

			loop_poll_fire(p,
				       loop_poll_from_sys(events, p->events));
			break;
		}
		}
	}
	return n;
}

/* ---- init and teardown ---- */

static void epoll_fini(struct loop *l)
{
	struct epoll_be *e = l->be;

	if (e == NULL)
		return;
	if (e->epfd >= 0)
		close(e->epfd);
	free(e->scratch);
	free(e);
	l->be = NULL;
}

static int epoll_init(struct loop *l)
{
	struct epoll_be *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -ENOMEM;
	l->be = e;
	e->scratch = malloc(l->buf_size);
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->scratch == NULL || e->epfd < 0) {
		int r = e->epfd < 0 ? -errno : -ENOMEM;

		epoll_fini(l);
		return r;
	}
	return 0;
}

const struct loop_backend_ops loop_epoll_ops = {
	.name = "epoll",
	.init = epoll_init,
	.fini = epoll_fini,
	.wait = epoll_wait_dispatch,
	.conn_attach = epoll_conn_attach,
	.conn_sync = epoll_conn_sync,
	.listener_sync = epoll_listener_sync,
	.poll_sync = epoll_poll_sync,
};
