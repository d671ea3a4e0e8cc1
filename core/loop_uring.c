/* core/loop_uring: the io_uring backend. One ring per loop, multishot
 * accept, multishot recv from a per-loop provided buffer ring, one send in
 * flight per connection, multishot poll for foreign fds. Uses nothing
 * newer than Linux 6.1 (Debian 12): SINGLE_ISSUER, DEFER_TASKRUN, buffer
 * rings, multishot accept/recv/poll, cancel by fd, registered ring fd. So
 * the uring_debian12 option has nothing to switch off today; a future
 * optional feature must be probed and also gated by it. */
#include "core/loop-int.h"

/* system */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* third party */
#include <liburing.h>

/* project */
#include "build-config.h"
#include "core/log.h"

#define URING_SQ_ENTRIES 256u
#define URING_CQ_FACTOR  8u
#define URING_BGID       0
/* liburing's private "ring fd registered" bit (INT_FLAG_REG_RING, 1 in
 * every liburing 2.x), see uring_fini. */
#define URING_INT_FLAG_REG_RING 1u
/* loop_free drains cancelled requests for at most this long. */
#define URING_DRAIN_MS 2000

struct uring {
	struct io_uring ring;
	unsigned setup_flags;
	bool enabled;
	bool ring_fd_registered;
	pthread_t owner;

	struct io_uring_buf_ring *br;
	size_t br_len;
	uint8_t *bufs;
	size_t bufs_len;
	int br_mask;
	unsigned bufs_avail; /* buffers in the ring, as far as we know */

	struct loop_conn *stall_head;
	uint32_t inflight; /* every request not finally completed */
};

/* ---- setup helpers (also used by the probe) ---- */

static struct io_uring_buf_ring *
uring_buf_ring_map(struct io_uring *ring, unsigned n, size_t *len_r, int *err_r)
{
	struct io_uring_buf_ring *br;
	size_t len = (size_t)n * sizeof(struct io_uring_buf);
#ifdef HAVE_IO_URING_SETUP_BUF_RING
	br = io_uring_setup_buf_ring(ring, n, URING_BGID, 0, err_r);
	if (br == NULL)
		return NULL;
#else
	struct io_uring_buf_reg reg;
	void *p;
	int r;

	/* liburing 2.3 (Debian 12) lacks io_uring_setup_buf_ring. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
		 -1, 0);
	if (p == MAP_FAILED) {
		*err_r = -errno;
		return NULL;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)(uintptr_t)p;
	reg.ring_entries = n;
	reg.bgid = URING_BGID;
	r = io_uring_register_buf_ring(ring, &reg, 0);
	if (r < 0) {
		munmap(p, len);
		*err_r = r;
		return NULL;
	}
	br = p;
	io_uring_buf_ring_init(br);
#endif
	*len_r = len;
	return br;
}

/* Try the fast setup first, then what older kernels accept. */
static int uring_queue_init(struct io_uring *ring, unsigned entries,
			    unsigned extra, unsigned *flags_r)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_CQSIZE,
	};
	struct io_uring_params p;
	int r = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | extra;
		p.cq_entries = entries * URING_CQ_FACTOR;
		r = io_uring_queue_init_params(entries, ring, &p);
		if (r == 0) {
			*flags_r = p.flags;
			return 0;
		}
		if (r != -EINVAL)
			return r;
	}
	return r;
}

/* ---- probe ---- */

/* Wait up to 1 s for the CQE tagged @ud (others are dropped); returns
 * its res and flags. */
static int uring_probe_wait(struct io_uring *ring, uint64_t ud, int *res_r,
			    unsigned *flags_r)
{
	struct __kernel_timespec ts = {.tv_nsec = 100 * 1000000};
	struct io_uring_cqe *cqe;
	int r;

	for (int i = 0; i < 10; i++) {
		r = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR)
			return r;
		while (io_uring_peek_cqe(ring, &cqe) == 0) {
			bool match = cqe->user_data == ud;

			*res_r = cqe->res;
			*flags_r = cqe->flags;
			io_uring_cqe_seen(ring, cqe);
			if (match)
				return 0;
		}
	}
	return -ETIME;
}

static bool uring_probe_recv(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;
	unsigned flags = 0;
	int sv[2], res = 0;
	bool ok = false;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, 1);
	if (write(sv[1], "x", 1) == 1 &&
	    uring_probe_wait(ring, 1, &res, &flags) == 0)
		ok = res == 1 && (flags & IORING_CQE_F_MORE) &&
		     (flags & IORING_CQE_F_BUFFER);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

static bool uring_probe_poll(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;
	unsigned flags = 0;
	int efd, res = 0;
	bool ok = false;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return false;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_poll_multishot(sqe, efd, POLLIN);
	io_uring_sqe_set_data64(sqe, 2);
	if (eventfd_write(efd, 1) == 0 &&
	    uring_probe_wait(ring, 2, &res, &flags) == 0)
		ok = res > 0 && (res & POLLIN) && (flags & IORING_CQE_F_MORE);
	close(efd);
	return ok;
}

static bool uring_probe_accept(struct io_uring *ring)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(sa_family_t);
	struct io_uring_sqe *sqe;
	unsigned flags = 0;
	int lfd, cfd = -1, res = -1;
	bool ok = false;

	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	/* Autobind: an abstract address, nothing in the file system. */
	if (bind(lfd, (struct sockaddr *)&a, len) < 0 || listen(lfd, 4) < 0)
		goto out;
	len = sizeof(a);
	if (getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
		goto out;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, 3);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, len) < 0)
		goto out;
	if (uring_probe_wait(ring, 3, &res, &flags) == 0 && res >= 0) {
		ok = (flags & IORING_CQE_F_MORE) != 0;
		close(res);
	}
out:
	if (cfd >= 0)
		close(cfd);
	close(lfd);
	return ok;
}

void loop_uring_probe(struct loop_probe *p)
{
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	unsigned flags = 0;
	size_t br_len = 0;
	uint8_t buf[2][64];
	int r, err = 0;

	memset(p, 0, sizeof(*p));
	r = io_uring_queue_init(8, &ring, 0);
	if (r < 0) {
		p->uring_errno = -r;
		return;
	}
	io_uring_queue_exit(&ring);
	p->uring = true;
	if (uring_queue_init(&ring, 16, 0, &flags) < 0)
		return;
	p->uring_defer_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
	br = uring_buf_ring_map(&ring, 2, &br_len, &err);
	if (br != NULL) {
		p->uring_buf_ring = true;
		for (int i = 0; i < 2; i++)
			io_uring_buf_ring_add(br, buf[i], sizeof(buf[i]),
					      (unsigned short)i,
					      io_uring_buf_ring_mask(2), i);
		io_uring_buf_ring_advance(br, 2);
		p->uring_recv_multishot = uring_probe_recv(&ring);
	}
	p->uring_poll_multishot = uring_probe_poll(&ring);
	p->uring_accept_multishot = uring_probe_accept(&ring);
	/* The exit cancels what is still armed; the buffer ring is pinned
	 * by the kernel until then. */
	io_uring_queue_exit(&ring);
	if (br != NULL)
		munmap(br, br_len);
}

bool loop_uring_usable(const struct loop_probe *p)
{
	return p->uring && p->uring_buf_ring && p->uring_recv_multishot &&
	       p->uring_accept_multishot && p->uring_poll_multishot;
}

/* ---- submission ---- */

/* Bind the ring to the calling thread on first use (SINGLE_ISSUER). */
static int uring_enable(struct loop *l)
{
	struct uring *u = l->be;
	int r;

	if (u->enabled)
		return 0;
	/* liburing 2.3 declares io_uring_enable_rings but does not export
	 * it: register directly. */
	r = (int)syscall(__NR_io_uring_register, u->ring.ring_fd,
			 IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (r < 0)
		return -errno;
	u->enabled = true;
	u->owner = pthread_self();
	/* The registration is per thread, like the binding. */
	if (io_uring_register_ring_fd(&u->ring) == 1)
		u->ring_fd_registered = true;
	return 0;
}

static struct io_uring_sqe *uring_sqe(struct loop *l)
{
	struct uring *u = l->be;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (sqe == NULL && uring_enable(l) == 0) {
		(void)io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe == NULL)
		log_warn("loop: io_uring submission queue full");
	return sqe;
}

static void uring_commit(struct loop_obj *o, struct io_uring_sqe *sqe,
			 unsigned op)
{
	struct uring *u = o->loop->be;

	io_uring_sqe_set_data64(sqe, loop_ud(o, op));
	o->inflight++;
	u->inflight++;
}

/* ---- provided buffers ---- */

static void uring_unstall_all(struct uring *u)
{
	struct loop_conn *c = u->stall_head, *next;

	u->stall_head = NULL;
	for (; c != NULL; c = next) {
		next = c->stall_next;
		c->stall_prev = c->stall_next = NULL;
		c->flags &= ~LOOP_CONN_F_RX_STALLED;
		loop_obj_queue(&c->obj);
	}
}

static void uring_unstall(struct uring *u, struct loop_conn *c)
{
	if (!(c->flags & LOOP_CONN_F_RX_STALLED))
		return;
	if (c->stall_prev != NULL)
		c->stall_prev->stall_next = c->stall_next;
	else
		u->stall_head = c->stall_next;
	if (c->stall_next != NULL)
		c->stall_next->stall_prev = c->stall_prev;
	c->stall_prev = c->stall_next = NULL;
	c->flags &= ~LOOP_CONN_F_RX_STALLED;
}

static void uring_buf_return(struct loop *l, unsigned bid)
{
	struct uring *u = l->be;

	if (bid >= l->buf_count)
		return;
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * l->buf_size,
			      l->buf_size, (unsigned short)bid, u->br_mask, 0);
	io_uring_buf_ring_advance(u->br, 1);
	u->bufs_avail++;
	if (u->stall_head != NULL)
		uring_unstall_all(u);
}

/* The ring was empty when the kernel had data for @c. Every buffer taken
 * before that has its completion ahead of this one, and those were
 * returned right after their callbacks; so if we count free buffers the
 * receive can be re-armed now, else at the next return. */
static void uring_stall(struct loop *l, struct loop_conn *c)
{
	struct uring *u = l->be;

	l->stats.rx_stalls++;
	if (u->bufs_avail > 0 || (c->flags & LOOP_CONN_F_RX_STALLED)) {
		loop_obj_queue(&c->obj);
		return;
	}
	c->flags |= LOOP_CONN_F_RX_STALLED;
	c->stall_prev = NULL;
	c->stall_next = u->stall_head;
	if (u->stall_head != NULL)
		u->stall_head->stall_prev = c;
	u->stall_head = c;
}

/* ---- connections ---- */

static int uring_conn_attach(struct loop_conn *c)
{
	(void)c;
	return 0;
}

static bool uring_cancel(struct loop_obj *o, unsigned op)
{
	struct io_uring_sqe *sqe = uring_sqe(o->loop);

	if (sqe == NULL)
		return false;
	io_uring_prep_cancel64(sqe, loop_ud(o, op), 0);
	uring_commit(o, sqe, LOOP_OP_CANCEL);
	return true;
}

static void uring_rx_sync(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;
	bool want =
		loop_conn_want_rx(c) && !(c->flags & LOOP_CONN_F_RX_STALLED);
	uint8_t mode = (c->flags & LOOP_CONN_F_TLS_RECORDS) ? LOOP_OP_RECVMSG
							    : LOOP_OP_RECV;
	struct io_uring_sqe *sqe;
	struct loop_conn_tlsrx *t;

	if (c->rx_op != LOOP_OP_NONE) {
		if ((!want || c->rx_op != mode) &&
		    !(c->flags & LOOP_CONN_F_RX_CANCEL)) {
			if (!uring_cancel(&c->obj, c->rx_op)) {
				loop_obj_queue(&c->obj);
				return;
			}
			c->flags |= LOOP_CONN_F_RX_CANCEL;
		}
		return;
	}
	if (!want)
		return;
	if (mode == LOOP_OP_RECVMSG && c->tlsrx == NULL) {
		c->tlsrx = malloc(sizeof(*c->tlsrx) + l->buf_size);
		if (c->tlsrx == NULL) {
			loop_conn_fail(c, -ENOMEM);
			return;
		}
	}
	sqe = uring_sqe(l);
	if (sqe == NULL) {
		loop_obj_queue(&c->obj);
		return;
	}
	if (mode == LOOP_OP_RECV) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = URING_BGID;
	} else {
		t = c->tlsrx;
		memset(&t->msg, 0, sizeof(t->msg));
		t->iov.iov_base = t->data;
		t->iov.iov_len = l->buf_size;
		t->msg.msg_iov = &t->iov;
		t->msg.msg_iovlen = 1;
		t->msg.msg_control = t->cmsg.buf;
		t->msg.msg_controllen = sizeof(t->cmsg.buf);
		/* io_uring does not write msg_controllen back: clear the
		 * buffer so a record without a type cmsg never shows the
		 * previous record's type. */
		memset(t->cmsg.buf, 0, sizeof(t->cmsg.buf));
		io_uring_prep_recvmsg(sqe, c->fd, &t->msg, 0);
	}
	uring_commit(&c->obj, sqe, mode);
	c->rx_op = mode;
}

static void uring_tx_sync(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;
	struct io_uring_sqe *sqe;
	const uint8_t *p;
	uint8_t type;
	size_t n;

	if (c->flags & (LOOP_CONN_F_TX_ARMED | LOOP_CONN_F_FAILED |
			LOOP_CONN_F_CONNECTING))
		return;
	n = loop_conn_tx_next(c, &p, &type);
	if (n == 0)
		return;
	sqe = uring_sqe(l);
	if (sqe == NULL) {
		loop_obj_queue(&c->obj);
		return;
	}
	/* No MSG_WAITALL: kernel TLS sockets reject it (EOPNOTSUPP);
	 * partial sends are resubmitted from the completion. */
	if (type == 0) {
		io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
	} else {
		loop_conn_tx_record_msg(c, p, n, type);
		io_uring_prep_sendmsg(sqe, c->fd, &c->tx_msg, MSG_NOSIGNAL);
	}
	uring_commit(&c->obj, sqe, LOOP_OP_SEND);
	c->flags |= LOOP_CONN_F_TX_ARMED;
	c->tx_len = (uint32_t)n;
	l->stats.sends++;
}

static void uring_conn_sync(struct loop_conn *c)
{
	struct loop *l = c->obj.loop;
	struct uring *u = l->be;
	struct io_uring_sqe *sqe;

	if (c->fd < 0)
		return;
	if (c->flags & LOOP_CONN_F_CLOSING) {
		uring_unstall(u, c);
		if ((c->flags & LOOP_CONN_F_FLUSHING) &&
		    (loop_conn_queued(c) == 0 ||
		     (c->flags & LOOP_CONN_F_FAILED)))
			c->flags &= ~LOOP_CONN_F_FLUSHING;
		if (c->flags & LOOP_CONN_F_FLUSHING) {
			uring_rx_sync(c); /* cancels the receive */
			uring_tx_sync(c);
			return;
		}
		if (c->obj.inflight > 0) {
			if (c->flags & LOOP_CONN_F_CANCEL_ALL)
				return;
			sqe = uring_sqe(l);
			if (sqe == NULL) {
				loop_obj_queue(&c->obj);
				return;
			}
			io_uring_prep_cancel_fd(sqe, c->fd,
						IORING_ASYNC_CANCEL_ALL);
			uring_commit(&c->obj, sqe, LOOP_OP_CANCEL);
			c->flags |= LOOP_CONN_F_CANCEL_ALL;
			return;
		}
		/* Nothing references the socket any more. */
		(void)shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
		c->fd = -1;
		return;
	}
	if (c->flags & LOOP_CONN_F_CONNECTING) {
		if (c->flags & LOOP_CONN_F_CONN_ARMED)
			return;
		sqe = uring_sqe(l);
		if (sqe == NULL) {
			loop_obj_queue(&c->obj);
			return;
		}
		io_uring_prep_connect(sqe, c->fd,
				      (struct sockaddr *)c->connect_addr,
				      c->connect_len);
		uring_commit(&c->obj, sqe, LOOP_OP_CONNECT);
		c->flags |= LOOP_CONN_F_CONN_ARMED;
		return;
	}
	uring_rx_sync(c);
	uring_tx_sync(c);
}

static void uring_conn_cqe(struct loop *l, struct loop_conn *c, unsigned op,
			   int res, unsigned flags)
{
	struct uring *u = l->be;
	bool more = (flags & IORING_CQE_F_MORE) != 0;
	unsigned bid;

	switch (op) {
	case LOOP_OP_RECV:
		if (!more) {
			c->rx_op = LOOP_OP_NONE;
			c->flags &= ~LOOP_CONN_F_RX_CANCEL;
		}
		if (flags & IORING_CQE_F_BUFFER) {
			bid = flags >> IORING_CQE_BUFFER_SHIFT;
			if (u->bufs_avail > 0)
				u->bufs_avail--;
			if (res > 0 && bid < l->buf_count)
				loop_conn_rx_data(
					c, u->bufs + (size_t)bid * l->buf_size,
					(size_t)res,
					(c->flags & LOOP_CONN_F_TLS_RECORDS)
						? 23
						: 0);
			else if (res == 0)
				loop_conn_rx_eof(c);
			/* The data was valid during the callback only. */
			uring_buf_return(l, bid);
		} else if (res == 0) {
			loop_conn_rx_eof(c);
		} else if (res == -ENOBUFS) {
			uring_stall(l, c);
		} else if (res == -EIO &&
			   (c->flags & LOOP_CONN_F_TLS_RECORDS)) {
			/* A control record on a kernel-TLS socket hit the
			 * plain receive armed before the switch: re-arm
			 * with recvmsg, which reads it with its type. */
		} else if (res < 0 && res != -ECANCELED) {
			loop_conn_fail(c, res);
		}
		break;
	case LOOP_OP_RECVMSG:
		c->rx_op = LOOP_OP_NONE;
		c->flags &= ~LOOP_CONN_F_RX_CANCEL;
		if (res > 0)
			loop_conn_rx_data(c, c->tlsrx->data, (size_t)res,
					  loop_tls_record_type(&c->tlsrx->msg));
		else if (res == 0)
			loop_conn_rx_eof(c);
		else if (res != -ECANCELED)
			loop_conn_fail(c, res);
		break;
	case LOOP_OP_SEND:
		c->flags &= ~LOOP_CONN_F_TX_ARMED;
		if (res >= 0) {
			if ((uint32_t)res < c->tx_len)
				l->stats.partial_sends++;
			if (res > 0)
				loop_conn_tx_done(c, (size_t)res);
		} else if (!(c->flags & LOOP_CONN_F_CLOSING) ||
			   (c->flags & LOOP_CONN_F_FLUSHING)) {
			loop_conn_fail(c, res);
		}
		break;
	case LOOP_OP_CONNECT:
		c->flags &= ~LOOP_CONN_F_CONN_ARMED;
		if (res == 0) {
			c->flags &= ~LOOP_CONN_F_CONNECTING;
			c->pend |= LOOP_CONN_P_CONNECTED;
		} else {
			loop_conn_fail(c, res);
		}
		break;
	default: /* LOOP_OP_CANCEL: nothing to do */
		break;
	}
	if (!more)
		loop_obj_queue(&c->obj);
}

/* ---- listeners ---- */

static int uring_listener_sync(struct loop_listener *li)
{
	struct loop *l = li->obj.loop;
	struct io_uring_sqe *sqe;

	if (li->obj.dead) {
		if (li->armed && !li->cancel) {
			if (!uring_cancel(&li->obj, LOOP_OP_ACCEPT)) {
				loop_obj_queue(&li->obj);
				return 0;
			}
			li->cancel = true;
		}
		return 0;
	}
	if (li->armed || li->backoff)
		return 0;
	sqe = uring_sqe(l);
	if (sqe == NULL) {
		loop_obj_queue(&li->obj);
		return 0;
	}
	io_uring_prep_multishot_accept(sqe, li->fd, NULL, NULL,
				       SOCK_NONBLOCK | SOCK_CLOEXEC);
	uring_commit(&li->obj, sqe, LOOP_OP_ACCEPT);
	li->armed = true;
	return 0;
}

static void uring_listener_cqe(struct loop_listener *li, unsigned op, int res,
			       unsigned flags)
{
	bool more = (flags & IORING_CQE_F_MORE) != 0;

	if (op != LOOP_OP_ACCEPT) {
		if (li->obj.dead)
			loop_obj_queue(&li->obj);
		return;
	}
	if (!more) {
		li->armed = false;
		li->cancel = false;
		loop_obj_queue(&li->obj);
	}
	if (res >= 0) {
		loop_listener_fire(li, res, NULL, 0);
	} else if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED &&
		   !li->obj.dead) {
		/* EMFILE and friends: re-arming at once would spin. */
		log_warn("loop: accept on fd %d: %s", li->fd, strerror(-res));
		li->backoff = true;
	}
}

/* ---- foreign polls ---- */

static int uring_poll_sync(struct loop_poll *p)
{
	struct loop *l = p->obj.loop;
	unsigned want = p->obj.dead || p->failed ? 0 : p->events;
	struct io_uring_sqe *sqe;

	if (p->armed_events != 0 && p->armed_events != want) {
		if (!uring_cancel(&p->obj, p->op)) {
			loop_obj_queue(&p->obj);
			return 0;
		}
		/* Completions of the old poll carry the old code. */
		p->op = (uint8_t)(LOOP_OP_POLL |
				  ((p->op + 1u) & LOOP_OP_POLL_SEQ));
		p->armed_events = 0;
	}
	if (want == 0 || p->armed_events != 0)
		return 0;
	sqe = uring_sqe(l);
	if (sqe == NULL) {
		loop_obj_queue(&p->obj);
		return 0;
	}
	io_uring_prep_poll_multishot(sqe, p->fd, loop_poll_to_sys(want));
	uring_commit(&p->obj, sqe, p->op);
	p->armed_events = want;
	return 0;
}

static void uring_poll_cqe(struct loop_poll *p, unsigned op, int res,
			   unsigned flags)
{
	bool more = (flags & IORING_CQE_F_MORE) != 0;

	if (op != p->op || p->armed_events == 0) {
		/* A cancel's own completion, or the replaced poll's. */
		if (p->obj.dead)
			loop_obj_queue(&p->obj);
		return;
	}
	if (!more) {
		p->armed_events = 0;
		loop_obj_queue(&p->obj);
	}
	if (res > 0) {
		loop_poll_fire(p, loop_poll_from_sys((unsigned)res, p->events));
	} else if (res < 0 && res != -ECANCELED) {
		log_debug("loop: poll on fd %d: %s", p->fd, strerror(-res));
		p->failed = true;
		loop_poll_fire(p, LOOP_POLL_ERR);
	}
}

/* ---- completions ---- */

static void uring_dispatch(struct loop *l, uint64_t ud, int res, unsigned flags)
{
	struct uring *u = l->be;
	unsigned op = (unsigned)(ud & 0xffu);
	bool more = (flags & IORING_CQE_F_MORE) != 0;
	struct loop_obj *o;

	if (!more && u->inflight > 0)
		u->inflight--;
	o = loop_obj_lookup(l, ud);
	if (o == NULL) {
		/* Only after loop teardown began; keep the ring sane. */
		l->stats.stale++;
		if (flags & IORING_CQE_F_BUFFER)
			uring_buf_return(l, flags >> IORING_CQE_BUFFER_SHIFT);
		if (op == LOOP_OP_ACCEPT && res >= 0)
			close(res);
		return;
	}
	if (!more && o->inflight > 0)
		o->inflight--;
	switch (o->kind) {
	case LOOP_OBJ_CONN:
		uring_conn_cqe(l, (struct loop_conn *)o, op, res, flags);
		break;
	case LOOP_OBJ_LISTENER:
		uring_listener_cqe((struct loop_listener *)o, op, res, flags);
		break;
	case LOOP_OBJ_POLL:
		uring_poll_cqe((struct loop_poll *)o, op, res, flags);
		break;
	}
}

static int uring_wait(struct loop *l, int timeout_ms)
{
	struct uring *u = l->be;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	unsigned budget = URING_SQ_ENTRIES * URING_CQ_FACTOR;
	int r, n = 0;

	r = uring_enable(l);
	if (r < 0)
		return r;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
						     NULL);
	} else {
		r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, NULL,
						     NULL);
	}
	loop_clock_update(l);
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		return r;
	while (budget-- > 0 && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&u->ring, cqe);
		uring_dispatch(l, ud, res, flags);
		n++;
	}
	return n;
}

/* ---- init and teardown ---- */

static int uring_init(struct loop *l)
{
	struct uring *u = calloc(1, sizeof(*u));
	int r, err = 0;

	if (u == NULL)
		return -ENOMEM;
	/* Disabled until the thread that runs the loop enables it, so the
	 * loop can be built on one thread and run on another. */
	r = uring_queue_init(&u->ring, URING_SQ_ENTRIES,
			     IORING_SETUP_R_DISABLED, &u->setup_flags);
	if (r < 0) {
		free(u);
		return r;
	}
	l->be = u;
	u->br = uring_buf_ring_map(&u->ring, l->buf_count, &u->br_len, &err);
	if (u->br == NULL) {
		r = err != 0 ? err : -ENOMEM;
		goto fail;
	}
	u->bufs_len = (size_t)l->buf_count * l->buf_size;
	u->bufs = mmap(NULL, u->bufs_len, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->bufs == MAP_FAILED) {
		u->bufs = NULL;
		r = -errno;
		goto fail;
	}
	u->br_mask = io_uring_buf_ring_mask(l->buf_count);
	for (unsigned i = 0; i < l->buf_count; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * l->buf_size,
				      l->buf_size, (unsigned short)i,
				      u->br_mask, (int)i);
	io_uring_buf_ring_advance(u->br, (int)l->buf_count);
	u->bufs_avail = l->buf_count;
	log_debug("loop: io_uring worker=%u setup_flags=0x%x buffers=%ux%u "
		  "debian12=%d",
		  l->worker_id, u->setup_flags, l->buf_count, l->buf_size,
		  l->uring_debian12);
	return 0;
fail:
	l->ops->fini(l);
	return r;
}

/* Cancel everything and wait (bounded) for the kernel to let go of our
 * memory, without callbacks. Only the ring's own thread can do this. */
static void uring_drain(struct loop *l)
{
	struct uring *u = l->be;
	struct __kernel_timespec ts = {.tv_nsec = 50 * 1000000};
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int rounds = URING_DRAIN_MS / 50;

	sqe = io_uring_get_sqe(&u->ring);
	if (sqe == NULL) {
		(void)io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe != NULL) {
		io_uring_prep_cancel64(sqe, 0,
				       IORING_ASYNC_CANCEL_ANY |
					       IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, LIBURING_UDATA_TIMEOUT - 1);
	}
	while (u->inflight > 0 && rounds-- > 0) {
		int r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
							 NULL);

		if (r < 0 && r != -ETIME && r != -EINTR)
			break;
		while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
			if (cqe->user_data != LIBURING_UDATA_TIMEOUT - 1 &&
			    !(cqe->flags & IORING_CQE_F_MORE) &&
			    u->inflight > 0)
				u->inflight--;
			io_uring_cqe_seen(&u->ring, cqe);
		}
	}
}

static void uring_fini(struct loop *l)
{
	struct uring *u = l->be;

	if (u == NULL)
		return;
	if (u->enabled && pthread_equal(u->owner, pthread_self()))
		uring_drain(l);
	else if (u->ring_fd_registered)
		/* The registration lives in the owner thread's table (and is
		 * gone once that thread exited); unregistering from here
		 * would hit this thread's slot of the same index. */
		u->ring.int_flags &= (unsigned char)~URING_INT_FLAG_REG_RING;
	io_uring_queue_exit(&u->ring);
	/* The kernel pinned the buffer ring; it is released with the ring
	 * and our mapping can go. */
	if (u->br != NULL)
		munmap(u->br, u->br_len);
	if (u->bufs != NULL)
		munmap(u->bufs, u->bufs_len);
	free(u);
	l->be = NULL;
}

const struct loop_backend_ops loop_uring_ops = {
	.name = "uring",
	.init = uring_init,
	.fini = uring_fini,
	.wait = uring_wait,
	.conn_attach = uring_conn_attach,
	.conn_sync = uring_conn_sync,
	.listener_sync = uring_listener_sync,
	.poll_sync = uring_poll_sync,
};
