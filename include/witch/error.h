/*
 * witch/error.h: error codes of libwitch and of the wire protocol.
 *
 * Every public function returns 0 (or a count) on success and a negative
 * WITCH_E* value on failure.  The list is explicitly numbered and
 * append-only: a value, once released, never changes meaning.  Wire error
 * slugs ("parse_error", ...) map one-to-one onto these values.
 */
#ifndef WITCH_ERROR_H
#define WITCH_ERROR_H

#include <stddef.h>
#include <witch/export.h>

/* X(number, NAME, "wire_slug", "human text") -- append only. */
#define WITCH_ERRORS(X)							\
	X(1, PARSE, "parse_error", "payload is not valid JSON")	\
	X(2, INVALID_REQUEST, "invalid_request",			\
	    "request is not a valid witch request")			\
	X(3, INVALID_FRAME, "invalid_frame", "invalid frame")		\
	X(4, FRAME_TOO_LARGE, "frame_too_large",			\
	    "frame larger than max_frame")				\
	X(5, UNKNOWN_ENDPOINT, "unknown_endpoint", "unknown endpoint")	\
	X(6, HANDLER, "handler_error", "endpoint handler failed")	\
	X(7, TIMEOUT, "timeout", "deadline passed")			\
	X(8, OVERLOADED, "overloaded", "server overloaded")		\
	X(9, SERVER_FULL, "server_full", "server has max_clients")	\
	X(10, UNAUTHORIZED, "unauthorized", "not authorized")		\
	X(11, INCOMPATIBLE, "incompatible", "source hash mismatch")	\
	X(12, UNSUPPORTED_PROTOCOL, "unsupported_protocol",		\
	    "no protocol in common")					\
	X(13, SHUTTING_DOWN, "shutting_down", "server shutting down")	\
	X(14, CANCELLED, "cancelled", "request cancelled")		\
	X(15, NOMEM, "no_memory", "out of memory")			\
	X(16, INVAL, "invalid_argument", "invalid argument")		\
	X(17, SYSTEM, "system_error", "system call failed")		\
	X(18, CONNECTION, "connection_error", "connection failed")	\
	X(19, ADDRINUSE, "address_in_use", "address already in use")	\
	X(20, STATE, "invalid_state", "operation not valid in this state") \
	X(21, EXISTS, "already_exists", "already exists")		\
	X(22, TOO_LARGE, "too_large", "value too large")		\
	X(23, PROTOCOL, "protocol_error", "peer broke the protocol")	\
	X(24, REMOTE, "remote_error", "server answered with an error") \
	X(25, NO_PEER, "no_peer", "no such peer")			\
	X(26, PEER_DOWN, "peer_down", "peer not alive")

enum witch_err {
	WITCH_OK = 0,
#define WITCH__ERR_ENUM(n, name, slug, text) WITCH_E##name = -(n),
	WITCH_ERRORS(WITCH__ERR_ENUM)
#undef WITCH__ERR_ENUM
};

/* Length of the text carried by a witch_error_t, including the NUL. */
#define WITCH_ERROR_TEXT_MAX 256

/*
 * Optional caller-owned error detail.  Functions that take one fill it on
 * failure (code and a human explanation) and leave it untouched on success.
 * NULL is always accepted where a witch_error_t * is taken.
 */
typedef struct witch_error {
	int code;				/* a WITCH_E* value */
	int remote;	/* with WITCH_EREMOTE: the server's code, else 0 */
	char text[WITCH_ERROR_TEXT_MAX];	/* NUL-terminated */
} witch_error_t;

WITCH_BEGIN_DECLS

/* Human text for a WITCH_E* value (or WITCH_OK); never NULL.  Any thread. */
WITCH_EXTERN const char *witch_strerror(int code);
/* Wire slug for a WITCH_E* value, e.g. "parse_error"; "unknown" otherwise. */
WITCH_EXTERN const char *witch_err_name(int code);
/* WITCH_E* value for a wire slug; WITCH_EINVAL if the slug is unknown. */
WITCH_EXTERN int witch_err_from_name(const char *slug);

WITCH_END_DECLS

#endif /* WITCH_ERROR_H */
