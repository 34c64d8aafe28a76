/*
 * proto/envelope.h: the request/reply envelope of protocol.md (pure: no
 * sockets, fuzzable).
 *
 * Requests are parsed with jansson and validated here; replies and events
 * are serialised here straight into a frame (4-byte header + JSON), so the
 * worker that builds one hands finished bytes to the reactor.
 */
#ifndef WITCH__PROTO_ENVELOPE_H
#define WITCH__PROTO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/buf.h"

/* Longest serialised id accepted (bytes of JSON, e.g. "\"abc\"" or "17"). */
#define WITCH__ID_MAX 128

struct witch__request_env {
	json_t		*root;		/* owned: the whole request object */
	const char	*endpoint;	/* borrowed from root or endpoint_buf */
	json_t		*data;		/* borrowed from root; NULL if absent */
	/*
	 * Fast path (witch__request_scan): root and data are NULL, data_raw
	 * points at the JSON text of "data" inside the payload (NULL when
	 * absent), and data_owned holds a DOM made on demand by
	 * witch__request_env_data().
	 */
	const char	*data_raw;
	size_t		 data_len;
	json_t		*data_owned;
	char		 endpoint_buf[64];
	char		 id[WITCH__ID_MAX + 1];	/* compact JSON of id, or "null" */
	bool		 has_id;
	bool		 oneway;
	bool		 has_deadline;
	int64_t		 deadline_ms;	/* >= 0 when has_deadline */
	/*
	 * witch__request_scan() on success: the payload's nesting depth
	 * and the estimated heap bytes of a jansson tree of it (scan.h).
	 */
	unsigned	 depth;
	size_t		 decode_cost;
};

/*
 * Parse and validate one payload (len bytes, not NUL-terminated).
 * Returns 0 with env filled (env->root owned by env), or
 *   WITCH_EPARSE            not JSON, not UTF-8, trailing garbage, or
 *                           nested deeper than jansson allows;
 *   WITCH_EINVALID_REQUEST  not an object; endpoint missing, not a string,
 *                           empty, longer than 63 bytes or holding a NUL;
 *                           id not an integer or string (an explicit null
 *                           included), or serialised longer than
 *                           WITCH__ID_MAX; oneway not a boolean;
 *                           deadline_ms not a non-negative integer; an
 *                           object key holding \u0000 (valid JSON that
 *                           jansson cannot represent);
 *   WITCH_ENOMEM            jansson ran out of memory.
 * Duplicate keys are accepted (the last wins); unknown keys are ignored.
 * On failure env->root is NULL, env->oneway is true when the object said
 * "oneway": true (the caller then sends no error), env->id holds the
 * request's id when it
 * could be read (so the error reply can carry it; otherwise "null"), and
 * msg (msglen bytes, may be NULL) gets a one-line human explanation.
 */
int witch__request_parse(const char *payload, size_t len,
    struct witch__request_env *env, char *msg, size_t msglen);
/* Release env->root; env may be parsed into again. */
void witch__request_env_clear(struct witch__request_env *env);

/*
 * Same contract as witch__request_parse(), faster: the payload is
 * validated by the allocation-free scanner (proto/scan.h), the envelope
 * fields are read from their spans and "data" is left as text (data_raw).
 * Anything unusual (invalid JSON, escapes in the id, endpoint or top-level
 * keys, wrong types) goes to witch__request_parse(), so replies and error
 * messages are exactly the same.  data_raw points into payload: copy it
 * before payload goes away.
 */
int witch__request_scan(const char *payload, size_t len,
    struct witch__request_env *env, char *msg, size_t msglen);
/* The request's data as JSON (borrowed; NULL if absent or unparsable). */
json_t *witch__request_env_data(struct witch__request_env *env);

/*
 * Append a result frame whose result is the concatenation of nparts
 * pieces of JSON text (already valid: the caller guarantees it), e.g.
 * {"echo": + data text + }.  0, WITCH_ENOMEM or WITCH_ETOO_LARGE; out is
 * unchanged on failure.
 */
int witch__reply_result_raw(struct witch__buf *out, const char *id,
    const char *const *parts, const size_t *lens, size_t nparts,
    size_t max_payload);

/*
 * Append one complete frame to out:
 *   reply_result:  {"id":<id>,"result":<result>}   (result NULL = null)
 *   reply_error:   {"id":<id>,"error":{"code":"<slug>","message":"<msg>"}}
 *   event:         {"event":"<name>","data":<data>} (data NULL = {})
 * id is the compact JSON text of the id ("null" when absent; NULL or ""
 * mean "null"), as witch__id_format() writes it; anything else fails with
 * WITCH_EINVAL.  code is a WITCH_E* value (witch_err_name() gives the
 * slug).  message and event are arbitrary text: they are escaped, and
 * bytes that are not well-formed UTF-8 become U+FFFD (message NULL:
 * witch_strerror(code); event NULL: WITCH_EINVAL).  Results whose payload
 * would exceed max_payload (0: no limit but the 32-bit length) fail with
 * WITCH_ETOO_LARGE and leave out as it was, as does every other failure
 * (WITCH_ENOMEM; WITCH_ETOO_LARGE from out's own limit; WITCH_EINVAL for a
 * result or data jansson cannot serialise).  Returns 0 on success.  Any
 * thread that owns out.
 */
int witch__reply_result(struct witch__buf *out, const char *id,
    const json_t *result, size_t max_payload);
int witch__reply_error(struct witch__buf *out, const char *id, int code,
    const char *message);
int witch__reply_event(struct witch__buf *out, const char *event,
    const json_t *data);

/* Compact JSON text of an id value (integer or string) into buf; 0 or
 * WITCH_EINVALID_REQUEST (wrong type or too long). */
int witch__id_format(const json_t *id, char *buf, size_t buflen);
struct witch__jspan;
/*
 * The same from a value witch__json_scan() accepted, without a DOM (a
 * string with escapes excepted: one small allocation).  0,
 * WITCH_EINVALID_REQUEST or WITCH_ENOMEM.
 */
int witch__id_format_span(const struct witch__jspan *v, char *buf,
    size_t buflen);

#endif
