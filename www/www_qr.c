/* www/www_qr: QR codes as PNG or SVG. */
#include "www/www_qr.h"

/* system */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* third party */
#include <qrencode.h>
#include <zlib.h>

#define WWW_QR_QUIET 4

static QRcode *www_qr_encode(const char *text)
{
	/* 8-bit mode keeps the case of "DCACCOUNT:https://...". */
	return QRcode_encodeString8bit(text, 0, QR_ECLEVEL_H);
}

static void www_qr_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One chunk: length, type, data, CRC over type and data. */
static uint8_t *www_qr_chunk(uint8_t *o, const char type[4], const uint8_t *d,
			     size_t n)
{
	uLong crc;

	www_qr_be32(o, (uint32_t)n);
	memcpy(o + 4, type, 4);
	if (n > 0)
		memcpy(o + 8, d, n);
	crc = crc32(0, o + 4, (uInt)(n + 4));
	www_qr_be32(o + 8 + n, (uint32_t)crc);
	return o + 12 + n;
}

int www_qr_png(const char *text, unsigned scale, uint8_t **png_r, size_t *len_r)
{
	static const uint8_t sig[8] = {0x89, 'P',  'N',  'G',
				       '\r', '\n', 0x1a, '\n'};
	QRcode *q;
	size_t side, row, raw_len;
	uLongf z_len;
	uint8_t *raw = NULL, *z = NULL, *png = NULL, *o, ihdr[13];
	int rc = -ENOMEM;

	*png_r = NULL;
	*len_r = 0;
	if (scale == 0 || scale > 32)
		return -EINVAL;
	q = www_qr_encode(text);
	if (q == NULL)
		return -EINVAL;
	side = ((size_t)q->width + 2 * WWW_QR_QUIET) * scale;
	row = side + 1; /* filter byte 0 (none) + one grey octet a pixel */
	raw_len = row * side;
	raw = malloc(raw_len);
	z_len = compressBound((uLong)raw_len);
	z = malloc(z_len);
	if (raw == NULL || z == NULL)
		goto out;
	memset(raw, 0xff, raw_len);
	for (size_t y = 0; y < side; y++) {
		long my = (long)(y / scale) - WWW_QR_QUIET;

		raw[y * row] = 0;
		for (size_t x = 0; x < side; x++) {
			long mx = (long)(x / scale) - WWW_QR_QUIET;

			if (mx >= 0 && my >= 0 && mx < q->width &&
			    my < q->width &&
			    (q->data[my * q->width + mx] & 1) != 0)
				raw[y * row + 1 + x] = 0;
		}
	}
	if (compress2(z, &z_len, raw, (uLong)raw_len, 9) != Z_OK)
		goto out;
	png = malloc(8 + 25 + 12 + z_len + 12);
	if (png == NULL)
		goto out;
	www_qr_be32(ihdr, (uint32_t)side);
	www_qr_be32(ihdr + 4, (uint32_t)side);
	ihdr[8] = 8;  /* bit depth */
	ihdr[9] = 0;  /* greyscale */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* adaptive filtering */
	ihdr[12] = 0; /* no interlace */
	memcpy(png, sig, 8);
	o = www_qr_chunk(png + 8, "IHDR", ihdr, sizeof(ihdr));
	o = www_qr_chunk(o, "IDAT", z, z_len);
	o = www_qr_chunk(o, "IEND", NULL, 0);
	*png_r = png;
	*len_r = (size_t)(o - png);
	png = NULL;
	rc = 0;
out:
	free(raw);
	free(z);
	free(png);
	QRcode_free(q);
	return rc;
}

int www_qr_svg(const char *text, struct buf *out)
{
	QRcode *q = www_qr_encode(text);
	int side, r;

	if (q == NULL)
		return -EINVAL;
	side = q->width + 2 * WWW_QR_QUIET;
	r = buf_printf(out,
		       "<svg xmlns=\"http://www.w3.org/2000/svg\" "
		       "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
		       "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
		       "<path fill=\"#000\" d=\"",
		       side, side, side, side);
	for (int y = 0; r == 0 && y < q->width; y++) {
		for (int x = 0; r == 0 && x < q->width; x++) {
			if ((q->data[y * q->width + x] & 1) != 0)
				r = buf_printf(out, "M%d %dh1v1h-1z",
					       x + WWW_QR_QUIET,
					       y + WWW_QR_QUIET);
		}
	}
	if (r == 0)
		r = buf_printf(out, "\"/></svg>");
	QRcode_free(q);
	return r;
}
