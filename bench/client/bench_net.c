/* bench/client/bench_net: blocking TCP + TLS client connections for
 * `ringmail bench`, with every wait bounded (poll before each read). */
#include "bench/client/bench_client.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <openssl/err.h>
#include <openssl/x509v3.h>

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_until(int64_t until_ns)
{
	struct timespec ts;

	if (until_ns <= bench_now_ns())
		return;
	ts.tv_sec = (time_t)(until_ns / 1000000000);
	ts.tv_nsec = (long)(until_ns % 1000000000);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

int bench_target_init(struct bench_target *t, char *err, size_t err_len)
{
	struct addrinfo hints, *res = NULL;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(t->host, "0", &hints, &res);
	if (r != 0 || res == NULL) {
		snprintf(err, err_len, "cannot resolve %s: %s", t->host,
			 gai_strerror(r));
		return -1;
	}
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	t->addr_len = res->ai_addrlen;
	freeaddrinfo(res);

	t->tls = SSL_CTX_new(TLS_client_method());
	if (t->tls == NULL) {
		snprintf(err, err_len, "SSL_CTX_new failed");
		return -1;
	}
	SSL_CTX_set_min_proto_version(t->tls, TLS1_2_VERSION);
	if (t->insecure) {
		SSL_CTX_set_verify(t->tls, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(t->tls, SSL_VERIFY_PEER, NULL);
		if (SSL_CTX_set_default_verify_paths(t->tls) != 1) {
			snprintf(err, err_len, "no default CA paths");
			return -1;
		}
	}
	/* Every connection is a fresh handshake, as a new client's. */
	SSL_CTX_set_session_cache_mode(t->tls, SSL_SESS_CACHE_OFF);
	if (t->io_timeout_ms <= 0)
		t->io_timeout_ms = 30000;
	return 0;
}

void bench_target_free(struct bench_target *t)
{
	SSL_CTX_free(t->tls);
	t->tls = NULL;
}

static void bench_conn_err(struct bench_conn *c, const char *what)
{
	unsigned long e = ERR_get_error();
	char ebuf[120];

	if (e != 0) {
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		snprintf(c->err, sizeof(c->err), "%s: %s", what, ebuf);
		ERR_clear_error();
	} else if (errno != 0) {
		snprintf(c->err, sizeof(c->err), "%s: %s", what,
			 strerror(errno));
	} else {
		snprintf(c->err, sizeof(c->err), "%s", what);
	}
}

/* Wait for @events on the socket until @deadline_ns. 1 ready, 0 timeout,
 * -1 error. */
static int bench_conn_wait(struct bench_conn *c, short events,
			   int64_t deadline_ns)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};

	for (;;) {
		int64_t left = deadline_ns - bench_now_ns();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&pfd, 1, (int)((left + 999999) / 1000000));
		if (r > 0)
			return 1;
		if (r == 0)
			continue;
		if (errno != EINTR)
			return -1;
	}
}

static int64_t bench_conn_deadline(const struct bench_conn *c)
{
	return bench_now_ns() + (int64_t)c->t->io_timeout_ms * 1000000;
}

/* Drive SSL_connect on the non-blocking socket until done. */
static int bench_conn_handshake(struct bench_conn *c)
{
	int64_t deadline = bench_conn_deadline(c);

	c->ssl = SSL_new(c->t->tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		bench_conn_err(c, "SSL_new");
		return -1;
	}
	SSL_set_tlsext_host_name(c->ssl, c->t->domain);
	if (!c->t->insecure)
		SSL_set1_host(c->ssl, c->t->domain);
	for (;;) {
		int r = SSL_connect(c->ssl);
		int e;

		if (r == 1)
			return 0;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (bench_conn_wait(c,
					    e == SSL_ERROR_WANT_READ ? POLLIN
								     : POLLOUT,
					    deadline) != 1) {
				snprintf(c->err, sizeof(c->err),
					 "TLS handshake timed out");
				return -1;
			}
			continue;
		}
		bench_conn_err(c, "TLS handshake");
		return -1;
	}
}

int bench_conn_open(struct bench_conn *c, const struct bench_target *t,
		    uint16_t port, bool tls)
{
	struct sockaddr_storage sa = t->addr;
	int one = 1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	c->t = t;
	c->ssl = NULL;
	c->in_off = c->in_len = 0;
	c->err[0] = '\0';
	if (sa.ss_family == AF_INET)
		((struct sockaddr_in *)&sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&sa)->sin6_port = htons(port);
	c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0);
	if (c->fd < 0) {
		bench_conn_err(c, "socket");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, t->addr_len) != 0) {
		if (errno != EINPROGRESS) {
			bench_conn_err(c, "connect");
			goto fail;
		}
		if (bench_conn_wait(c, POLLOUT, bench_conn_deadline(c)) != 1) {
			snprintf(c->err, sizeof(c->err), "connect timed out");
			goto fail;
		}
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
		    soerr != 0) {
			errno = soerr;
			bench_conn_err(c, "connect");
			goto fail;
		}
	}
	if (tls && bench_conn_handshake(c) != 0)
		goto fail;
	return 0;
fail:
	bench_conn_close(c);
	return -1;
}

int bench_conn_starttls(struct bench_conn *c)
{
	/* Anything buffered before the handshake would be an injection. */
	c->in_off = c->in_len = 0;
	return bench_conn_handshake(c);
}

void bench_conn_close(struct bench_conn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int bench_conn_write(struct bench_conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	int64_t deadline = bench_conn_deadline(c);

	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			size_t done = 0;
			int r = SSL_write_ex(c->ssl, b, n, &done);

			if (r == 1) {
				w = (ssize_t)done;
			} else {
				int e = SSL_get_error(c->ssl, r);

				if (e != SSL_ERROR_WANT_READ &&
				    e != SSL_ERROR_WANT_WRITE) {
					bench_conn_err(c, "TLS write");
					return -1;
				}
				if (bench_conn_wait(c,
						    e == SSL_ERROR_WANT_READ
							    ? POLLIN
							    : POLLOUT,
						    deadline) != 1) {
					snprintf(c->err, sizeof(c->err),
						 "write timed out");
					return -1;
				}
				continue;
			}
		} else {
			w = send(c->fd, b, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN) {
					bench_conn_err(c, "write");
					return -1;
				}
				if (bench_conn_wait(c, POLLOUT, deadline) !=
				    1) {
					snprintf(c->err, sizeof(c->err),
						 "write timed out");
					return -1;
				}
				continue;
			}
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int bench_conn_printf(struct bench_conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		snprintf(c->err, sizeof(c->err), "command too long");
		return -1;
	}
	return bench_conn_write(c, buf, (size_t)n);
}

/* Read more octets into c->in. 1 read, 0 deadline, -1 error/EOF. */
static int bench_conn_fill(struct bench_conn *c, int64_t deadline_ns)
{
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len);
		c->in_off = 0;
	}
	if (c->in_len == sizeof(c->in))
		return 1; /* full: the caller consumes first */
	for (;;) {
		ssize_t r;

		if (c->ssl != NULL) {
			size_t got = 0;
			int ok = SSL_read_ex(c->ssl, c->in + c->in_len,
					     sizeof(c->in) - c->in_len, &got);

			if (ok == 1) {
				c->in_len += got;
				return 1;
			}
			switch (SSL_get_error(c->ssl, ok)) {
			case SSL_ERROR_WANT_READ:
				r = bench_conn_wait(c, POLLIN, deadline_ns);
				break;
			case SSL_ERROR_WANT_WRITE:
				r = bench_conn_wait(c, POLLOUT, deadline_ns);
				break;
			case SSL_ERROR_ZERO_RETURN:
				snprintf(c->err, sizeof(c->err),
					 "connection closed by the server");
				return -1;
			default:
				bench_conn_err(c, "TLS read");
				return -1;
			}
			if (r != 1)
				return r == 0 ? 0 : -1;
			continue;
		}
		r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
			 0);
		if (r > 0) {
			c->in_len += (size_t)r;
			return 1;
		}
		if (r == 0) {
			snprintf(c->err, sizeof(c->err),
				 "connection closed by the server");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			bench_conn_err(c, "read");
			return -1;
		}
		r = bench_conn_wait(c, POLLIN, deadline_ns);
		if (r != 1)
			return r == 0 ? 0 : -1;
	}
}

int bench_conn_readline(struct bench_conn *c, char *line, size_t cap,
			int64_t deadline_ns)
{
	bool cut = false;

	if (deadline_ns == 0)
		deadline_ns = bench_conn_deadline(c);
	for (;;) {
		uint8_t *p = c->in + c->in_off;
		uint8_t *lf = memchr(p, '\n', c->in_len);
		int r;

		if (lf != NULL) {
			size_t len = (size_t)(lf - p), n = 0;

			if (!cut) {
				n = len < cap - 1 ? len : cap - 1;
				memcpy(line, p, n);
				if (n > 0 && line[n - 1] == '\r')
					n--;
			} else {
				n = strlen(line);
			}
			line[n] = '\0';
			c->in_off += len + 1;
			c->in_len -= len + 1;
			return (int)n;
		}
		if (c->in_off + c->in_len == sizeof(c->in) && c->in_off == 0) {
			/* An over-long line: keep its start, skip the rest.
			 * (A timeout now loses it; replies we read are
			 * short.) */
			if (!cut) {
				memcpy(line, p, cap - 1);
				line[cap - 1] = '\0';
				cut = true;
			}
			c->in_off = c->in_len = 0;
		}
		/* A partial line stays buffered: a timeout keeps it. */
		r = bench_conn_fill(c, deadline_ns);
		if (r == 0) {
			snprintf(c->err, sizeof(c->err), "timed out");
			return BENCH_CONN_TIMEOUT;
		}
		if (r < 0)
			return -1;
	}
}

long bench_conn_read_n(struct bench_conn *c, size_t n, uint8_t *out, size_t cap)
{
	int64_t deadline = bench_conn_deadline(c);
	size_t got = 0;

	while (got < n) {
		size_t take;

		if (c->in_len == 0) {
			int r = bench_conn_fill(c, deadline);

			if (r <= 0) {
				if (r == 0)
					snprintf(c->err, sizeof(c->err),
						 "literal timed out");
				return -1;
			}
			continue;
		}
		take = c->in_len < n - got ? c->in_len : n - got;
		if (got < cap)
			memcpy(out + got, c->in + c->in_off,
			       take < cap - got ? take : cap - got);
		c->in_off += take;
		c->in_len -= take;
		got += take;
	}
	return (long)got;
}
