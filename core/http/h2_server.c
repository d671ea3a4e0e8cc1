/* core/http/h2_server: placeholder until the nghttp2 session lands (the
 * "h2" row is not added, so h2 is never negotiated). */
#include "core/http/http_server_int.h"

struct h2_session *h2_session_new(const struct http_sess_cfg *cfg,
				  const struct http_sess_ops *ops, void *io)
{
	(void)cfg;
	(void)ops;
	(void)io;
	return NULL;
}

void h2_session_free(struct h2_session **s)
{
	*s = NULL;
}

size_t h2_session_input(struct h2_session *s, const uint8_t *p, size_t n)
{
	(void)s;
	(void)p;
	return n;
}

void h2_session_drained(struct h2_session *s)
{
	(void)s;
}

void h2_session_timeout(struct h2_session *s)
{
	(void)s;
}

bool h2_session_done(const struct h2_session *s)
{
	(void)s;
	return true;
}

unsigned h2_session_requests(const struct h2_session *s)
{
	(void)s;
	return 0;
}
