/* core/http/http_msg: one HTTP header field, shared by the server and the
 * client sides of core/http. Name and value point into storage the owner
 * keeps; both are NUL-terminated, the lengths exclude the NUL. */
#ifndef RINGMAIL_CORE_HTTP_MSG_H
#define RINGMAIL_CORE_HTTP_MSG_H

#include <stddef.h>

struct http_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

#endif
