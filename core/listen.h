/* core/listen: listening sockets, bound by ringmail or handed over by
 * systemd socket activation (LISTEN_FDS / LISTEN_FDNAMES). */
#ifndef RINGMAIL_CORE_LISTEN_H
#define RINGMAIL_CORE_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct listen_sock {
	char name[32];  /* service name, e.g. "smtp", "imaps" */
	char addr[136]; /* printable "host:port" */
	int fd;
	int activated; /* 1 when systemd handed it over */
};

/* Parse "host:port", "[v6addr]:port" or ":port"/"*:port" (any IPv4) into
 * @ss. Numeric hosts only; 0 or -EINVAL. */
int listen_addr_parse(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len_r);
/* Bind and listen (non-blocking, CLOEXEC, SO_REUSEADDR, IPV6_V6ONLY for
 * IPv6). Returns the fd or -errno. */
int listen_bind(const struct sockaddr *sa, socklen_t len, int backlog);
/* Take the sockets systemd passed (names from LISTEN_FDNAMES, "" when
 * unnamed) into @out, at most @max. Returns the count (0 when not socket
 * activated) or -errno. Unsets the LISTEN_* variables. */
int listen_take_systemd(struct listen_sock *out, size_t max);
/* Printable local address of @fd into @out. */
void listen_fd_name(int fd, char *out, size_t out_len);

#endif
