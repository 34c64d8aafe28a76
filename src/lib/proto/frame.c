/*
 * proto/frame.c: incremental decoder for length-prefixed frames.
 *
 * See frame.h for the contract and doc/internals/framing.md for the design:
 * the length is checked from the 4-byte prefix alone, frames complete in
 * the fed data are handed to the callback straight from the caller's bytes,
 * and only a trailing partial frame is ever copied (into one buffer of
 * exactly the announced size).
 */
#include <stdint.h>
#include <string.h>

#include <witch/error.h>
#include <witch/server.h>

#include "core/alloc.h"
#include "proto/frame.h"

/*
 * Write the 4-byte big-endian length prefix of a frame.  Any thread.
 */
void
witch__frame_put_header(unsigned char hdr[WITCH__FRAME_HDR], uint32_t len)
{
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
}

static uint32_t
get_header(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * Initialise a decoder; no allocation.  max_frame outside
 * 1..WITCH_MAX_FRAME_CEILING is clamped into that range.  The decoder is
 * owned by one thread at a time.
 */
void
witch__decoder_init(struct witch__decoder *d, uint32_t max_frame)
{
	if (max_frame == 0)
		max_frame = 1;
	if (max_frame > WITCH_MAX_FRAME_CEILING)
		max_frame = WITCH_MAX_FRAME_CEILING;
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
}

/*
 * Free the partial frame, if any, and forget it.  The error state is kept:
 * a poisoned decoder stays poisoned until witch__decoder_init().
 */
void
witch__decoder_clear(struct witch__decoder *d)
{
	witch__free(d->body);
	d->body = NULL;
	d->body_len = 0;
	d->body_need = 0;
	d->hdr_len = 0;
}

static int
poison(struct witch__decoder *d, int err)
{
	witch__decoder_clear(d);
	d->error = err;
	return err;
}

static int
check_length(const struct witch__decoder *d, uint32_t len)
{
	if (len == 0)
		return WITCH_EINVALID_FRAME;
	if (len > d->max_frame)
		return WITCH_EFRAME_TOO_LARGE;
	return 0;
}

/*
 * A length has been read and checked, and p..end holds the start of its
 * body.  Deliver the frame directly from p if it is all there; otherwise
 * allocate the body buffer once, at the announced size, and keep what we
 * have.  Returns the bytes consumed, or a negative error in *rc.
 */
static size_t
start_body(struct witch__decoder *d, uint32_t len, const unsigned char *p,
    size_t avail, witch__frame_cb cb, void *ud, int *rc)
{
	*rc = 0;
	if (avail >= len) {
		d->hdr_len = 0;
		d->frames++;
		*rc = cb(ud, (const char *)p, len);
		return len;
	}
	if ((d->body = witch__malloc(len)) == NULL) {
		*rc = WITCH_ENOMEM;
		return 0;
	}
	d->hdr_len = WITCH__FRAME_HDR;
	d->body_need = len;
	d->body_len = avail;
	if (avail > 0)
		memcpy(d->body, p, avail);
	return avail;
}

/*
 * Continue a stored partial frame with up to avail bytes from p; deliver
 * and free it when complete.  Returns the bytes consumed.
 */
static size_t
continue_body(struct witch__decoder *d, const unsigned char *p, size_t avail,
    witch__frame_cb cb, void *ud, int *rc)
{
	size_t take = d->body_need - d->body_len;

	*rc = 0;
	if (take > avail)
		take = avail;
	memcpy(d->body + d->body_len, p, take);
	d->body_len += take;
	if (d->body_len == d->body_need) {
		d->frames++;
		*rc = cb(ud, (const char *)d->body, d->body_need);
		witch__decoder_clear(d);
	}
	return take;
}

/*
 * Feed n bytes of the stream; see frame.h.  Delivers every complete frame
 * to cb in order and keeps the trailing partial one.  Returns 0 or a
 * negative error, after which the decoder is poisoned.  The thread that
 * owns the decoder; cb runs on that thread, inside this call.
 */
int
witch__decoder_feed(struct witch__decoder *d, const void *data, size_t n,
    witch__frame_cb cb, void *ud)
{
	const unsigned char *p = data, *end;
	uint32_t len;
	size_t take, used;
	int rc;

	if (d->error != 0)
		return d->error;
	if (n == 0)
		return 0;
	end = p + n;
	while (p < end) {
		if (d->body != NULL) {
			/* Middle of a stored partial body. */
			used = continue_body(d, p, (size_t)(end - p), cb, ud,
			    &rc);
			p += used;
			if (rc < 0)
				goto fail;
			continue;
		}
		if (d->hdr_len == 0 && (size_t)(end - p) >= WITCH__FRAME_HDR) {
			/* Fast path: the whole prefix is in the fed data. */
			len = get_header(p);
			p += WITCH__FRAME_HDR;
		} else {
			take = WITCH__FRAME_HDR - d->hdr_len;
			if (take > (size_t)(end - p))
				take = (size_t)(end - p);
			memcpy(d->hdr + d->hdr_len, p, take);
			d->hdr_len += take;
			p += take;
			if (d->hdr_len < WITCH__FRAME_HDR)
				break;
			len = get_header(d->hdr);
		}
		if ((rc = check_length(d, len)) != 0)
			goto fail;
		used = start_body(d, len, p, (size_t)(end - p), cb, ud, &rc);
		p += used;
		if (rc < 0)
			goto fail;
	}
	return 0;

fail:
	return poison(d, rc);
}
