/* core/listen: listening sockets and systemd socket activation. */
#include "core/listen.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* third party */
#include <systemd/sd-daemon.h>

int listen_addr_parse(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len_r)
{
	char host[128];
	const char *colon, *port_s;
	size_t hlen;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close_br = strchr(s, ']');

		if (close_br == NULL || close_br[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close_br - s - 1);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		port_s = close_br + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		port_s = colon + 1;
	}
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno != 0 || end == port_s || *end != '\0' || port < 0 ||
	    port > 65535)
		return -EINVAL;
	if (s[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*len_r = sizeof(*sin6);
		return 0;
	}
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		if (host[0] == '\0' || strcmp(host, "*") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		*len_r = sizeof(*sin);
	}
	return 0;
}

int listen_bind(const struct sockaddr *sa, socklen_t len, int backlog)
{
	int fd, one = 1, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int listen_take_systemd(struct listen_sock *out, size_t max)
{
	char **names = NULL;
	int n, i, flags;

	n = sd_listen_fds_with_names(1, &names);
	if (n <= 0)
		return n;
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if ((size_t)i >= max) {
			close(fd);
			continue;
		}
		flags = fcntl(fd, F_GETFL);
		if (flags >= 0)
			(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		out[i].fd = fd;
		out[i].activated = 1;
		snprintf(out[i].name, sizeof(out[i].name), "%s",
			 names != NULL && names[i] != NULL &&
					 strcmp(names[i], "unknown") != 0
				 ? names[i]
				 : "");
		listen_fd_name(fd, out[i].addr, sizeof(out[i].addr));
	}
	if (names != NULL) {
		for (i = 0; names[i] != NULL; i++)
			free(names[i]);
		free(names);
	}
	return n < (int)max ? n : (int)max;
}

void listen_fd_name(int fd, char *out, size_t out_len)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(out, out_len, "fd:%d", fd);
		return;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, out_len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, out_len, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		snprintf(out, out_len, "fd:%d", fd);
	}
}
