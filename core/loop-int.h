/* core/loop-int: private layouts shared by loop.c, loop_uring.c and
 * loop_epoll.c (STYLE.md rule 2). Nothing outside core/loop*.c and the
 * loop's own unit test may include this header.
 *
 * Model. Every object the kernel can report on (connection, listener,
 * foreign poll) owns a slot in a per-loop table; the slot's generation
 * changes each time the slot is reused, so a completion (io_uring
 * user_data) or an epoll event carrying (slot, generation) for an object
 * that is gone is dropped. Public functions never do I/O and never call
 * back into the caller: they change the object's wanted state and put it
 * on the pending list. loop_pending_run (top level of each iteration)
 * delivers deferred events and asks the backend to reconcile the kernel
 * state with the wanted state (arm/cancel receives, start sends, close).
 * Objects are freed only there, so a callback can never free the object
 * whose event is being dispatched. */
#ifndef RINGMAIL_CORE_LOOP_INT_H
#define RINGMAIL_CORE_LOOP_INT_H

#include "core/loop.h"

/* system */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* project */
#include "core/buf.h"

#define LOOP_GEN_MASK  0xffffffu
#define LOOP_SLOT_NONE UINT32_MAX

/* Defaults (struct loop_opts zero values). */
#define LOOP_DEFAULT_BUF_COUNT 256u
#define LOOP_DEFAULT_BUF_SIZE  16384u
#define LOOP_DEFAULT_MAX_CONNS 65536u
#define LOOP_DEFAULT_SEND_MAX  (4u << 20)

/* io_uring operation codes: the low byte of user_data; epoll uses the
 * object kind there instead. */
enum loop_op {
	LOOP_OP_NONE = 0,
	LOOP_OP_ACCEPT,
	LOOP_OP_RECV,    /* multishot recv, provided buffers */
	LOOP_OP_RECVMSG, /* single-shot recvmsg with a cmsg (TLS records) */
	LOOP_OP_SEND,
	LOOP_OP_CONNECT,
	LOOP_OP_CANCEL,
	/* Polls use LOOP_OP_POLL | seq (6 bits): each re-arm takes the next
	 * code, so completions of a replaced poll are told apart. */
	LOOP_OP_POLL = 0x40,
};
#define LOOP_OP_POLL_MASK 0xc0u
#define LOOP_OP_POLL_SEQ  0x3fu

enum loop_obj_kind {
	LOOP_OBJ_CONN = 1,
	LOOP_OBJ_LISTENER,
	LOOP_OBJ_POLL,
};

/* Header of every slotted object. */
struct loop_obj {
	struct loop *loop;
	uint32_t slot;
	uint32_t gen;
	uint8_t kind;
	bool dead;         /* the user's handle is gone (stop/remove/close) */
	bool queued;       /* on the pending list */
	bool zombie;       /* destroyed while queued: freed when dequeued */
	uint32_t inflight; /* io_uring requests not yet finally completed */
	struct loop_obj *pend_next;
};

struct loop_slot {
	struct loop_obj *obj; /* NULL when free */
	uint32_t gen;         /* current or next generation, never 0 */
	uint32_t next_free;
};

/* A run of queued bytes: plain (type 0) or one TLS record of @type. */
struct loop_seg {
	uint32_t len;
	uint8_t type;
};

/* Send queue half. Without TLS records nseg is 0 and every byte is
 * plain; otherwise segs[seg_head..nseg) describes b in order. */
struct loop_outq {
	struct buf b;
	struct loop_seg *segs;
	uint32_t nseg, seg_head, seg_cap;
};

/* Connection flags. */
#define LOOP_CONN_F_CONNECTING  0x0001u /* connect not finished */
#define LOOP_CONN_F_RX_PAUSED   0x0002u
#define LOOP_CONN_F_RX_EOF      0x0004u /* peer's FIN seen: no more rx */
#define LOOP_CONN_F_EOF_PENDING 0x0008u /* EOF to deliver after stash */
#define LOOP_CONN_F_FAILED      0x0010u
#define LOOP_CONN_F_CLOSING     0x0020u
#define LOOP_CONN_F_FLUSHING    0x0040u /* closing, queue still sending */
#define LOOP_CONN_F_TLS_RECORDS 0x0080u
#define LOOP_CONN_F_RX_STALLED  0x0100u /* uring: ENOBUFS, on stall list */
#define LOOP_CONN_F_RX_READY    0x0200u /* epoll: may be readable */
#define LOOP_CONN_F_TX_BLOCKED  0x0400u /* epoll: EAGAIN, wait EPOLLOUT */
#define LOOP_CONN_F_CANCEL_ALL  0x0800u /* uring: cancel_fd issued */
#define LOOP_CONN_F_RX_CANCEL   0x1000u /* uring: rx cancel issued */
#define LOOP_CONN_F_TX_ARMED    0x2000u /* uring: a send in flight */
#define LOOP_CONN_F_CONN_ARMED  0x4000u /* uring: connect in flight */
#define LOOP_CONN_F_OUTBOUND    0x8000u /* opened by loop_conn_connect */

/* Deferred deliveries (loop_conn_process). */
#define LOOP_CONN_P_CONNECTED 0x1u
#define LOOP_CONN_P_ERROR     0x2u

/* TLS-records receive state (uring: one recvmsg in flight). */
struct loop_conn_tlsrx {
	struct msghdr msg;
	struct iovec iov;
	union {
		size_t align; /* cmsghdr alignment (it ends in a flexible array) */
		uint8_t buf[64];
	} cmsg;
	uint8_t data[]; /* buf_size bytes */
};

struct loop_conn {
	struct loop_obj obj; /* first */
	int fd;
	uint32_t flags;
	uint32_t pend;
	int err;
	loop_conn_fn *fn;
	void *arg;

	struct loop_outq out;   /* being sent (frozen while TX_ARMED) */
	struct loop_outq queue; /* appended while out is frozen */

	struct buf rx_stash; /* received while paused, in order */
	uint8_t rx_stash_type;
	uint8_t rx_op; /* uring: armed receive op, LOOP_OP_NONE if none */

	struct loop_conn *stall_prev, *stall_next;

	/* uring send and connect state */
	uint32_t tx_len;
	struct msghdr tx_msg;
	struct iovec tx_iov;
	union {
		size_t align; /* cmsghdr alignment (it ends in a flexible array) */
		uint8_t buf[32];
	} tx_cmsg;
	struct sockaddr_storage *connect_addr;
	socklen_t connect_len;

	struct loop_conn_tlsrx *tlsrx;
};

#define LOOP_LISTENER_BACKOFF_MS 100u

struct loop_listener {
	struct loop_obj obj;
	int fd;
	loop_accept_fn *fn;
	void *arg;
	bool armed;   /* uring: multishot accept in flight / epoll: in set */
	bool cancel;  /* uring: cancel issued */
	bool backoff; /* accept failed (EMFILE...): retry after a delay */
	struct loop_timer backoff_timer;
};

struct loop_poll {
	struct loop_obj obj;
	int fd;
	unsigned events;       /* wanted LOOP_POLL_IN|OUT */
	unsigned armed_events; /* what the kernel watches; 0 = nothing */
	uint8_t op;            /* uring: LOOP_OP_POLL | seq of the armed poll */
	bool internal;         /* the loop's own eventfd: no level recheck */
	bool failed;           /* the kernel refused it; until modified */
	bool recheck;          /* uring: deliver again if still ready */
	loop_poll_fn *fn;
	void *arg;
};

struct loop_post_node {
	struct loop_post_node *next;
	loop_post_fn *fn;
	void *arg;
};

/* Counters for tests and metrics; loop thread only. */
struct loop_stats {
	uint64_t rx_stalls;     /* uring: recv got ENOBUFS */
	uint64_t sends;         /* send operations issued */
	uint64_t partial_sends; /* sends that moved fewer bytes than asked */
	uint64_t stale;         /* completions/events for a gone object */
};

struct loop_backend_ops {
	const char *name;
	int (*init)(struct loop *l);
	/* Tear down the kernel side; objects are still in the slot table
	 * and are freed by loop.c afterwards. */
	void (*fini)(struct loop *l);
	/* Submit, wait at most @timeout_ms (-1: no limit), call
	 * loop_clock_update() as soon as the kernel returns, dispatch.
	 * Returns events handled or -errno (fatal). */
	int (*wait)(struct loop *l, int timeout_ms);
	int (*conn_attach)(struct loop_conn *c);
	/* Reconcile; may deliver events (called from the pending run). */
	void (*conn_sync)(struct loop_conn *c);
	/* Reconcile listeners/polls; never calls back, so it may run from
	 * public functions. Returns 0 or -errno. */
	int (*listener_sync)(struct loop_listener *li);
	int (*poll_sync)(struct loop_poll *p);
};

extern const struct loop_backend_ops loop_uring_ops;
extern const struct loop_backend_ops loop_epoll_ops;

/* Fill the io_uring part of @p with live tests (loop_uring.c). */
void loop_uring_probe(struct loop_probe *p);
/* Whether the probed kernel has everything the uring backend uses. */
bool loop_uring_usable(const struct loop_probe *p);

struct loop {
	const struct loop_backend_ops *ops;
	enum loop_backend backend;
	bool uring_debian12;
	unsigned worker_id;
	unsigned buf_count, buf_size, max_conns, send_max;
	uint64_t now_ms;

	struct loop_slot *slots;
	uint32_t nslots, free_head;
	unsigned nconns;
	unsigned nconns_out; /* of nconns: LOOP_CONN_F_OUTBOUND */

	struct loop_obj *pend_head, *pend_tail;

	struct loop_timer **heap;
	uint32_t heap_len, heap_cap;

	pthread_mutex_t post_mtx;
	struct loop_post_node *post_head, *post_tail;
	bool post_signaled; /* eventfd written, not yet drained */
	int evfd;
	struct loop_poll *evpoll;
	atomic_bool stop;

	struct loop_stats stats;
	void *be; /* backend state */
};

/* ---- shared helpers (loop.c) ---- */

static inline uint64_t loop_ud(const struct loop_obj *o, unsigned op)
{
	return ((uint64_t)o->slot << 32) | ((uint64_t)o->gen << 8) | op;
}

/* Refresh @l->now_ms from CLOCK_MONOTONIC. Backends call it the moment
 * their kernel wait returns, before dispatching anything: a handler that
 * arms a timer after a quiet spell must not arm it from a clock as old
 * as the spell (it would fire at once). */
void loop_clock_update(struct loop *l);
/* The live object for @ud's slot and generation, else NULL. */
struct loop_obj *loop_obj_lookup(struct loop *l, uint64_t ud);
/* Put @o on the pending list (idempotent). */
void loop_obj_queue(struct loop_obj *o);

/* Call the handler (nothing but CLOSED once closing). Only from the
 * dispatch of a completion/event or from the pending run. */
void loop_conn_emit(struct loop_conn *c, enum loop_conn_ev_type type,
		    const uint8_t *data, size_t len, int err, uint8_t tls_type);
bool loop_conn_want_rx(const struct loop_conn *c);
size_t loop_conn_queued(const struct loop_conn *c);
/* Deliver received bytes (stashed while paused). */
void loop_conn_rx_data(struct loop_conn *c, const uint8_t *data, size_t len,
		       uint8_t type);
void loop_conn_rx_eof(struct loop_conn *c);
/* Record a failure; ERROR is delivered from the pending run. */
void loop_conn_fail(struct loop_conn *c, int err);
/* The next run to send: swaps the halves when out is empty. Returns the
 * length (0: nothing queued) and the record type (0 = plain). */
size_t loop_conn_tx_next(struct loop_conn *c, const uint8_t **p_r,
			 uint8_t *type_r);
/* @n bytes of the run from loop_conn_tx_next were sent; delivers SENT
 * when the queue drains. */
void loop_conn_tx_done(struct loop_conn *c, size_t n);
/* Fill @c->tx_msg for a TLS record send of @len bytes at @p. */
void loop_conn_tx_record_msg(struct loop_conn *c, const uint8_t *p, size_t len,
			     uint8_t type);
/* Record type from a recvmsg control buffer (23 if absent). */
uint8_t loop_tls_record_type(const struct msghdr *msg);
/* Hand an accepted @fd to the listener's callback (closed if stopped);
 * @peer NULL: looked up with getpeername. */
void loop_listener_fire(struct loop_listener *li, int fd,
			const struct sockaddr *peer, socklen_t peer_len);
void loop_poll_fire(struct loop_poll *p, unsigned revents);
/* poll(2) events <-> LOOP_POLL_* */
unsigned loop_poll_to_sys(unsigned events);
unsigned loop_poll_from_sys(unsigned revents, unsigned wanted);

#endif
