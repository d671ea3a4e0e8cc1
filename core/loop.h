/* core/loop: one event loop per worker thread, with two interchangeable
 * backends (io_uring, epoll) chosen at run time. Sessions never see which
 * one is active. Every function here must be called on the loop's own
 * thread, except loop_post() and loop_stop(). A loop may be created and
 * set up on one thread and run on another: it binds to the first thread
 * that calls loop_run/loop_run_once (io_uring SINGLE_ISSUER) and must
 * then stay there; loop_free runs there too, or after that thread exited. */
#ifndef RINGMAIL_CORE_LOOP_H
#define RINGMAIL_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct loop_conn;
struct loop_poll;
struct loop_listener;

enum loop_backend {
	LOOP_BACKEND_AUTO = 0, /* io_uring if it can be set up, else epoll */
	LOOP_BACKEND_URING,
	LOOP_BACKEND_EPOLL,
};

struct loop_opts {
	enum loop_backend backend;
	/* io_uring: refuse any feature newer than Debian 12's kernel 6.1
	 * even where the running kernel has it (CI's uring_profile=debian12). */
	bool uring_debian12;
	unsigned worker_id; /* 0..255, becomes the top byte of conn ids */
	unsigned buf_count; /* provided receive buffers (power of 2); 0 = 256 */
	unsigned buf_size;  /* bytes each; 0 = 16384 */
	unsigned max_conns; /* slot table size; 0 = 65536 */
	/* Added: per-connection send queue limit in bytes; 0 = 4 MiB.
	 * loop_conn_send beyond it returns -ENOBUFS and queues nothing. */
	unsigned send_max;
};

/* What the running kernel offers, probed once per process. */
struct loop_probe {
	bool uring;               /* io_uring_setup works (no ENOSYS/EPERM) */
	bool uring_defer_taskrun; /* SINGLE_ISSUER|DEFER_TASKRUN accepted */
	bool uring_buf_ring;      /* provided buffer rings */
	bool uring_recv_multishot;
	bool uring_accept_multishot;
	bool uring_poll_multishot;
	bool ktls_ulp;   /* "tls" listed in tcp_available_ulp or loadable */
	int uring_errno; /* why io_uring is unusable, 0 if usable */
};

/* Probe kernel features (cached after the first call; thread-safe). */
const struct loop_probe *loop_probe_kernel(void);

/* Create a loop; returns 0 or -errno. With LOOP_BACKEND_AUTO a failing
 * io_uring setup (ENOSYS, EPERM, ...) falls back to epoll. */
int loop_new(const struct loop_opts *opts, struct loop **loop_r);
/* Close every connection, listener and poll without callbacks; free. */
void loop_free(struct loop **loop);
enum loop_backend loop_get_backend(const struct loop *l);
const char *loop_backend_name(enum loop_backend b);
/* Parse "auto|uring|epoll" (also "io_uring"); -1 on unknown. */
int loop_backend_parse(const char *s, enum loop_backend *b_r);

/* Run until loop_stop(); returns 0 or -errno on a fatal backend error. */
int loop_run(struct loop *l);
/* Process ready events once, waiting at most @timeout_ms (-1 = until an
 * event or timer). Returns the number of events handled or -errno. */
int loop_run_once(struct loop *l, int timeout_ms);
/* Make loop_run return after the current iteration. Thread-safe. */
void loop_stop(struct loop *l);
/* Monotonic milliseconds, refreshed once per iteration. */
uint64_t loop_now_ms(const struct loop *l);
unsigned loop_worker_id(const struct loop *l);

/* ---- cross-thread messages ---- */
typedef void loop_post_fn(void *arg);
/* Run @fn(@arg) on @l's thread soon. Thread-safe, allocation-free for
 * the caller's memory (the loop keeps a node list). Returns 0 or -ENOMEM. */
int loop_post(struct loop *l, loop_post_fn *fn, void *arg);

/* ---- timers (min-heap shared by both backends) ---- */
struct loop_timer;
typedef void loop_timer_fn(struct loop_timer *t, void *arg);
struct loop_timer {
	uint64_t deadline_ms;
	uint32_t heap_idx; /* UINT32_MAX when not armed */
	loop_timer_fn *fn;
	void *arg;
};
void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *arg);
/* (Re)arm @t to fire once after @after_ms. The struct must stay alive
 * while armed. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t after_ms);
void loop_timer_disarm(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_idx != UINT32_MAX;
}

/* ---- foreign file descriptors (c-ares sockets, eventfds) ---- */
#define LOOP_POLL_IN  0x1u
#define LOOP_POLL_OUT 0x2u
#define LOOP_POLL_ERR 0x4u /* reported only */
typedef void loop_poll_fn(struct loop_poll *p, unsigned revents, void *arg);
/* Call @fn whenever @fd is ready for @events (level-triggered, repeating
 * until removed). NULL on failure. The fd stays the caller's. */
struct loop_poll *loop_poll_add(struct loop *l, int fd, unsigned events,
				loop_poll_fn *fn, void *arg);
int loop_poll_modify(struct loop_poll *p, unsigned events);
/* Stop polling; no callback after this returns. Sets *p to NULL. */
void loop_poll_remove(struct loop_poll **p);

/* ---- listeners ---- */
typedef void loop_accept_fn(struct loop_listener *li, int fd,
			    const struct sockaddr *peer, socklen_t peer_len,
			    void *arg);
/* Accept on the listening socket @lfd (multishot on io_uring). @fn owns
 * each accepted fd (non-blocking, CLOEXEC). NULL on failure. */
struct loop_listener *loop_listen(struct loop *l, int lfd, loop_accept_fn *fn,
				  void *arg);
/* Stop accepting (the listening fd is not closed). Sets *li to NULL. */
void loop_listener_stop(struct loop_listener **li);

/* ---- connections ---- */
enum loop_conn_ev_type {
	LOOP_CONN_EV_CONNECTED, /* loop_conn_connect finished */
	LOOP_CONN_EV_RECV,      /* data/len valid only during the callback */
	LOOP_CONN_EV_SENT,      /* the send queue became empty */
	LOOP_CONN_EV_EOF,       /* peer closed its side */
	LOOP_CONN_EV_ERROR,     /* err = -errno; the connection is unusable */
	LOOP_CONN_EV_CLOSED,    /* last event; the conn is freed after it */
};

struct loop_conn_ev {
	enum loop_conn_ev_type type;
	const uint8_t *data;
	size_t len;
	int err;
	/* In LOOP_CONN_F_TLS_RECORDS mode, RECV carries one record's
	 * plaintext and its TLS content type (23 = application data). */
	uint8_t tls_record_type;
};

typedef void loop_conn_fn(struct loop_conn *c, const struct loop_conn_ev *ev,
			  void *arg);

/* Adopt a connected non-blocking socket and start receiving. NULL on
 * failure (the fd is then closed). */
struct loop_conn *loop_conn_new(struct loop *l, int fd, loop_conn_fn *fn,
				void *arg);
/* Start a non-blocking connect to @addr (TCP or unix); CONNECTED or
 * ERROR follows. Returns 0 or -errno. */
int loop_conn_connect(struct loop *l, const struct sockaddr *addr,
		      socklen_t addr_len, loop_conn_fn *fn, void *arg,
		      struct loop_conn **c_r);
/* Change the callback (e.g. when a session hands the socket over). */
void loop_conn_set_handler(struct loop_conn *c, loop_conn_fn *fn, void *arg);

/* Queue bytes for sending (copied). One send is in flight at a time; SENT
 * follows when the queue drains. 0 or -errno (-ENOBUFS over the limit). */
int loop_conn_send(struct loop_conn *c, const void *data, size_t len);
/* Queue one TLS record of content @type for a kernel-TLS socket (sent
 * with sendmsg + TLS_SET_RECORD_TYPE), in order with loop_conn_send. */
int loop_conn_send_tls_record(struct loop_conn *c, uint8_t type,
			      const void *data, size_t len);
/* Bytes queued and not yet handed to the kernel. */
size_t loop_conn_pending(const struct loop_conn *c);
/* Stop/restart delivering RECV events (backpressure). */
void loop_conn_recv_pause(struct loop_conn *c);
void loop_conn_recv_resume(struct loop_conn *c);
/* Kernel TLS receive is installed on the socket: from now on receive with
 * recvmsg and report each record's type (LOOP_CONN_F_TLS_RECORDS). */
void loop_conn_set_tls_records(struct loop_conn *c);
/* Close: cancel receives; if @flush, first send what is queued (bounded
 * by the caller's own timers). CLOSED is delivered once nothing is in
 * flight; no other event after loop_conn_close. */
void loop_conn_close(struct loop_conn *c, bool flush);

/* Unique id (worker byte | generation | slot); also the log id. */
uint64_t loop_conn_id(const struct loop_conn *c);
/* The connection with @id if it is still open on @l, else NULL. */
struct loop_conn *loop_conn_find(struct loop *l, uint64_t id);
int loop_conn_fd(const struct loop_conn *c);
struct loop *loop_conn_loop(const struct loop_conn *c);
/* Number of open connections on @l. */
unsigned loop_conn_count(const struct loop *l);
/* Of those, the ones not opened by loop_conn_connect (accepted or
 * adopted with loop_conn_new): what a drain waits for. */
unsigned loop_conn_count_inbound(const struct loop *l);
/* loop_conn_close(c, false) on every open connection (shutdown after a
 * drain): each still gets its CLOSED event on a later iteration. */
void loop_conn_close_all(struct loop *l);

#endif
