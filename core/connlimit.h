/* core/connlimit: concurrent connections per client address, shared by
 * every worker thread of one service (Postfix anvil's connection count).
 * A client is an IPv4 address (an IPv4-mapped IPv6 address is the IPv4
 * one) or an IPv6 /64, so hopping inside one's own prefix does not help.
 * The table is fixed at creation (a bucket of 16 entries per keyed hash,
 * one lock per bucket stripe): taking a slot is one short critical
 * section with no allocation, never a process-wide lock. */
#ifndef RINGMAIL_CORE_CONNLIMIT_H
#define RINGMAIL_CORE_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct connlimit;

/* One client: what a connection is counted under. */
struct connlimit_key {
	uint64_t prefix; /* IPv4: the address; IPv6: the first 64 bits */
	uint8_t family;  /* 4, 6, or 0 (unix socket, unknown: all one) */
};

/* The client @sa belongs to (NULL or a non-IP family: the one key 0). */
struct connlimit_key connlimit_key_of(const struct sockaddr *sa);

/* A table for at most @max_conns connections counted at once (the
 * service's global limit; sizes the table, 0 = 1024). 0 or -ENOMEM. */
int connlimit_new(unsigned max_conns, struct connlimit **l_r);
void connlimit_free(struct connlimit **l);

/* Count one connection of @k unless @cap are counted already (@cap 0:
 * no cap). Returns 1 (counted: release it later), 0 (over the cap) or
 * -ENOSPC (the key's bucket is full of other clients: not counted, not
 * refused either; the global limit still holds). Thread-safe. */
int connlimit_take(struct connlimit *l, const struct connlimit_key *k,
		   unsigned cap);
/* Give back one connection taken with connlimit_take() == 1. */
void connlimit_release(struct connlimit *l, const struct connlimit_key *k);
/* Connections counted for @k now. */
unsigned connlimit_count(struct connlimit *l, const struct connlimit_key *k);

#endif
