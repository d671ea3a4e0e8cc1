/* imap-proxy/imap_appversions: the value of METADATA
 * /shared/vendor/deltachat/appversions (spec H.5). Any valid JSON file is
 * accepted if it has chatmail's schema, checked the way Delta Chat core
 * reads it: {"clients":[{"clientId","sources":[{"sourceId",
 * "versionInteger" (u32),"versionString","downloadUrl"}]}]}, exact key
 * sets, non-empty strings and lists, unique ids, download URLs under
 * https://github.com/deltachat/ or https://download.delta.chat/ (and at
 * most 64 clients, 64 sources each, ids under 256 octets). It is
 * served compacted to one line. Without a configured file the built-in
 * default (deploy/appversions.json, compiled in) is served. Start-up only:
 * the file is read with blocking I/O. */
#ifndef RINGMAIL_IMAP_APPVERSIONS_H
#define RINGMAIL_IMAP_APPVERSIONS_H

#include <stddef.h>

#define IMAP_APPVERSIONS_FILE_MAX (64 * 1024)

/* Check @in[0..@len) and compact it: 0 with *@out_r (malloc'd, one line,
 * NUL-terminated), or -1 with the reason in @err ("invalid JSON at
 * offset N: ...", or the schema path that is wrong). */
int imap_appversions_compact(const char *in, size_t len, char **out_r,
			     char *err, size_t err_cap);
/* The same for the file at @path (at most IMAP_APPVERSIONS_FILE_MAX
 * octets); NULL or "" means the built-in default. */
int imap_appversions_read(const char *path, char **out_r, char *err,
			  size_t err_cap);

#endif
