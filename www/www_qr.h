/* www/www_qr: QR codes from libqrencode (ECC level H, 8-bit mode), as a
 * PNG (8-bit greyscale, written with zlib) or as inline SVG, each with
 * the 4-module quiet zone readers need. */
#ifndef RINGMAIL_WWW_QR_H
#define RINGMAIL_WWW_QR_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* A PNG of @text with @scale pixels per module into malloc'd *@png_r. 0,
 * -EINVAL (does not fit a QR code) or -ENOMEM. Boot time. */
int www_qr_png(const char *text, unsigned scale, uint8_t **png_r,
	       size_t *len_r);
/* An <svg> element of @text appended to @out. 0 or <0. */
int www_qr_svg(const char *text, struct buf *out);

#endif
