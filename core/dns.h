/* core/dns: TXT lookups through c-ares inside a worker's loop. c-ares's
 * sockets are polled with loop_poll_add (ARES_OPT_SOCK_STATE_CB), its
 * retransmission deadlines come from ares_timeout() on a loop timer, and
 * each query has its own overall deadline on another. Nothing blocks:
 * all of it runs on the loop's thread, one resolver per loop. */
#ifndef RINGMAIL_CORE_DNS_H
#define RINGMAIL_CORE_DNS_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/dns_parse.h"

#ifdef __cplusplus
extern "C" {
#endif

struct loop;
struct dns_resolver;
struct dns_query;

enum dns_status {
	DNS_OK = 0,       /* an answer (it may hold no TXT record) */
	DNS_NOTFOUND,     /* NXDOMAIN or no data */
	DNS_TEMPFAIL,     /* timeout, SERVFAIL, REFUSED, network error */
	DNS_ERR_RESPONSE, /* a response that does not parse */
};
const char *dns_status_name(enum dns_status st);

/* A resolver on @l: @server "ip:port" (or "[v6]:port"; NULL or "" means
 * /etc/resolv.conf). 0, -EINVAL (bad server) or -ENOMEM. */
int dns_resolver_new(struct loop *l, const char *server,
		     struct dns_resolver **r_r);
/* Queries still running end without their callbacks. */
void dns_resolver_free(struct dns_resolver **r);
/* Queries in flight (for tests and metrics). */
unsigned dns_resolver_pending(const struct dns_resolver *r);

/* @ans is valid during the call only (NULL unless DNS_OK). */
typedef void dns_txt_fn(enum dns_status st, const struct dns_txt_answer *ans,
			void *arg);
/* Look up the TXT records of @name; @fn runs exactly once on the loop
 * thread, never from inside this call, unless cancelled first. After
 * @timeout_ms (0: 60 s) it reports DNS_TEMPFAIL. 0 or -errno. */
int dns_txt_lookup(struct dns_resolver *r, const char *name,
		   uint64_t timeout_ms, dns_txt_fn *fn, void *arg,
		   struct dns_query **q_r);
/* A and AAAA results: addresses with port 0, in c-ares's preference
 * order (RFC 6724), at most DNS_ADDR_MAX kept. */
#define DNS_ADDR_MAX 8
struct dns_addr_answer {
	unsigned n;
	uint32_t ttl; /* smallest TTL (0 for /etc/hosts or literals) */
	struct sockaddr_storage addr[DNS_ADDR_MAX];
	socklen_t len[DNS_ADDR_MAX];
};
/* @ans is valid during the call only (NULL unless DNS_OK, then n >= 1). */
typedef void dns_addr_fn(enum dns_status st, const struct dns_addr_answer *ans,
			 void *arg);
/* Resolve @name (a host name, /etc/hosts entry or IP literal) to its
 * addresses of @family (AF_UNSPEC: both, AF_INET, AF_INET6); the same
 * rules as dns_txt_lookup: @fn exactly once, never from inside this
 * call, DNS_TEMPFAIL after @timeout_ms (0: 60 s). 0 or -errno. */
int dns_addr_lookup(struct dns_resolver *r, const char *name, int family,
		    uint64_t timeout_ms, dns_addr_fn *fn, void *arg,
		    struct dns_query **q_r);
/* No callback for @q after this; sets *@q to NULL. */
void dns_query_cancel(struct dns_query **q);

#ifdef __cplusplus
}
#endif

#endif
