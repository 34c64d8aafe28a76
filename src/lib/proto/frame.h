/*
 * proto/frame.h: length-prefixed frame codec (pure: no sockets, fuzzable).
 *
 * A frame is a 4-byte big-endian length followed by that many payload
 * bytes.  The length must be 1..max_frame; it is checked from the prefix
 * alone, before any byte of the body is awaited or any memory allocated.
 * See doc/internals/framing.md.
 */
#ifndef WITCH__PROTO_FRAME_H
#define WITCH__PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WITCH__FRAME_HDR 4

/* Write the 4-byte big-endian prefix for a payload of len bytes. */
void witch__frame_put_header(unsigned char hdr[WITCH__FRAME_HDR],
    uint32_t len);

/*
 * Called by the decoder for each complete payload, in order.  payload is
 * valid only during the call and is NOT NUL-terminated.  Return 0 to go
 * on; a negative value stops the feed, which returns that value (bytes not
 * yet delivered are discarded: the caller is closing the stream).
 */
typedef int (*witch__frame_cb)(void *ud, const char *payload, size_t len);

/*
 * Incremental decoder for one stream.  Frames may arrive split at any byte
 * and many may arrive in one feed.  Only a partial frame is ever stored:
 * its body buffer is allocated once, at exactly the announced size, after
 * the length has been checked.
 */
struct witch__decoder {
	uint32_t	 max_frame;
	unsigned char	 hdr[WITCH__FRAME_HDR];
	size_t		 hdr_len;	/* header bytes held (0..4) */
	unsigned char	*body;		/* partial body, or NULL */
	size_t		 body_len;	/* bytes held in body */
	size_t		 body_need;	/* announced length of the body */
	int		 error;		/* sticky: once failed, always fails */
	uint64_t	 frames;	/* frames delivered so far */
};

/* Initialise (no allocation).  max_frame: 1..WITCH_MAX_FRAME_CEILING
 * (values outside are clamped into that range). */
void witch__decoder_init(struct witch__decoder *d, uint32_t max_frame);
/* Free the partial frame, if any; the decoder may be re-initialised.
 * A poisoned decoder stays poisoned until witch__decoder_init(). */
void witch__decoder_clear(struct witch__decoder *d);

/*
 * Feed n bytes.  Delivers every complete frame to cb, in order, then keeps
 * the trailing partial frame.  Returns 0, or:
 *   WITCH_EINVALID_FRAME    a length prefix of 0;
 *   WITCH_EFRAME_TOO_LARGE  a length prefix > max_frame;
 *   WITCH_ENOMEM            the body buffer could not be allocated;
 *   any negative value cb returned.
 * Frames before the bad prefix are delivered first.  After an error
 * (including a negative value from cb) the decoder is poisoned: later
 * feeds return the same error, delivering nothing.  Frames complete in
 * data are passed to cb straight from data (no copy, no allocation).
 */
int witch__decoder_feed(struct witch__decoder *d, const void *data, size_t n,
    witch__frame_cb cb, void *ud);

/*
 * Observers for the tests and the fuzz target (inline: the library does
 * not use them, so they are not compiled into it).
 * True when the decoder holds part of a frame: some header bytes, or a
 * body that is not complete yet.
 */
static inline int
witch__decoder_partial(const struct witch__decoder *d)
{
	return d->hdr_len > 0 || d->body != NULL;
}

/* Heap bytes the decoder holds: the announced size of a partial body. */
static inline size_t
witch__decoder_memory(const struct witch__decoder *d)
{
	return d->body != NULL ? d->body_need : 0;
}

#endif
