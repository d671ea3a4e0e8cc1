/* core/http/http_client_resp: the bounded response accumulator shared by
 * the HTTP/2 and HTTP/1.1 paths of the client. */
#include "core/http/http_client-int.h"

/* system */
#include <errno.h>
#include <string.h>

void hc_resp_init(struct hc_resp *r, uint32_t hdr_max, size_t body_max)
{
	memset(r, 0, sizeof(*r));
	r->hdr_max = hdr_max;
	/* Storage overhead per field: two NULs. */
	buf_init(&r->fields, hdr_max + 2u * HC_FIELDS_MAX);
	buf_init(&r->body, body_max > UINT32_MAX - 1 ? UINT32_MAX - 1
						     : (uint32_t)body_max);
}

void hc_resp_free(struct hc_resp *r)
{
	buf_free(&r->fields);
	buf_free(&r->body);
}

void hc_resp_reset(struct hc_resp *r)
{
	r->status = 0;
	r->nfields = 0;
	buf_clear(&r->fields);
}

int hc_resp_count(struct hc_resp *r, size_t nlen, size_t vlen)
{
	if (nlen + vlen > r->hdr_max - r->hdr_bytes)
		return -EMSGSIZE;
	r->hdr_bytes += (uint32_t)(nlen + vlen);
	return 0;
}

int hc_resp_field(struct hc_resp *r, const uint8_t *name, size_t nlen,
		  const uint8_t *value, size_t vlen)
{
	uint8_t *p;

	if (r->nfields >= HC_FIELDS_MAX || hc_resp_count(r, nlen, vlen) < 0)
		return -EMSGSIZE;
	p = buf_reserve(&r->fields, nlen + vlen + 2);
	if (p == NULL)
		return -EMSGSIZE;
	for (size_t i = 0; i < nlen; i++) {
		uint8_t ch = name[i];

		p[i] = ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + 32) : ch;
	}
	p[nlen] = '\0';
	memcpy(p + nlen + 1, value, vlen);
	p[nlen + 1 + vlen] = '\0';
	buf_commit(&r->fields, nlen + vlen + 2);
	r->nfields++;
	return 0;
}

int hc_resp_data(struct hc_resp *r, const uint8_t *data, size_t len)
{
	if (len == 0)
		return 0;
	return buf_append(&r->body, data, len) < 0 ? -EMSGSIZE : 0;
}

void hc_resp_view(const struct hc_resp *r, struct http_field *fields,
		  struct http_client_resp *out)
{
	const char *p = (const char *)buf_head(&r->fields);
	const char *end = p + r->fields.len;
	unsigned n = 0;

	memset(out, 0, sizeof(*out));
	while (p < end && n < r->nfields && n < HC_FIELDS_MAX) {
		fields[n].name = p;
		fields[n].name_len = strlen(p);
		p += fields[n].name_len + 1;
		fields[n].value = p;
		fields[n].value_len = strlen(p);
		p += fields[n].value_len + 1;
		n++;
	}
	out->status = r->status;
	out->fields = fields;
	out->nfields = n;
	out->body = r->body.len > 0 ? buf_head(&r->body) : (const uint8_t *)"";
	out->body_len = r->body.len;
}

const char *http_client_resp_field(const struct http_client_resp *resp,
				   const char *name)
{
	for (unsigned i = 0; i < resp->nfields; i++) {
		if (strcmp(resp->fields[i].name, name) == 0)
			return resp->fields[i].value;
	}
	return NULL;
}
