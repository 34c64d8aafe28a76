/*
 * proto/reply.c: serialise replies and events straight into a frame.
 *
 * A frame is built in place at the end of the caller's buffer: a 4-byte
 * placeholder, the compact JSON appended piece by piece (jansson writes
 * result/data values through a callback; strings we own are escaped here),
 * then the real length is written into the placeholder.  Any failure
 * truncates the buffer back to where it was.
 */
#include <stdint.h>
#include <string.h>

#include <witch/error.h>

#include "proto/envelope.h"
#include "proto/frame.h"

/* The frame being built at the end of out. */
struct sink {
	struct witch__buf	*out;
	size_t			 start;		/* out->len before the frame */
	size_t			 max;		/* payload limit, bytes */
	int			 err;		/* first failure, or 0 */
};

/* Append n bytes; the slow path grows the buffer and checks the limits. */
static int
put_slow(struct sink *s, const void *p, size_t n)
{
	int rc;

	if (s->err != 0)
		return s->err;
	if (n > s->max - (s->out->len - s->start - WITCH__FRAME_HDR)) {
		s->err = WITCH_ETOO_LARGE;
		return s->err;
	}
	if ((rc = witch__buf_append(s->out, p, n)) != 0)
		s->err = rc;
	return s->err;
}

/*
 * Fast path: room in the buffer and under the payload limit (reply
 * pieces are small; this is most of the bytes of most replies).
 */
static inline int
put(struct sink *s, const void *p, size_t n)
{
	struct witch__buf *b = s->out;

	if (s->err == 0 && n <= b->cap - b->len &&
	    n <= s->max - (b->len - s->start - WITCH__FRAME_HDR)) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		return 0;
	}
	return put_slow(s, p, n);
}

static inline int
put_str(struct sink *s, const char *str)
{
	return put(s, str, strlen(str));
}

/* json_dump_callback() glue. */
static int
dump_cb(const char *buf, size_t size, void *ud)
{
	return put(ud, buf, size) == 0 ? 0 : -1;
}

static int
begin(struct sink *s, struct witch__buf *out, size_t max_payload)
{
	static const unsigned char zero[WITCH__FRAME_HDR];

	s->out = out;
	s->start = out->len;
	s->max = max_payload == 0 || max_payload > UINT32_MAX ?
	    UINT32_MAX : max_payload;
	s->err = witch__buf_append(out, zero, sizeof(zero));
	return s->err;
}

static int
finish(struct sink *s, int rc)
{
	size_t len;

	if (rc == 0 && s->err == 0) {
		len = s->out->len - s->start - WITCH__FRAME_HDR;
		witch__frame_put_header(s->out->data + s->start,
		    (uint32_t)len);
		return 0;
	}
	s->out->len = s->start;
	return s->err != 0 ? s->err : rc;
}

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes available), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2)
		return 0;
	if (p[0] < 0xe0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] < 0xf0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] < 0xf5) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * Append str as a JSON string literal.  Arbitrary bytes are accepted: each
 * byte that does not start a well-formed UTF-8 sequence becomes U+FFFD, so
 * the output is always valid JSON.
 */
static int
put_jstring(struct sink *s, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)str, *run;
	char esc[7];
	size_t n = strlen(str), k;

	put(s, "\"", 1);
	run = p;
	while (n > 0) {
		k = utf8_seq(p, n);
		if (k != 0 && *p >= 0x20 && *p != '"' && *p != '\\') {
			p += k;
			n -= k;
			continue;
		}
		put(s, run, (size_t)(p - run));
		if (k == 0) {
			put(s, "\xef\xbf\xbd", 3);	/* U+FFFD */
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(s, esc, 2);
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0xf];
			put(s, esc, 6);
		}
		p++;
		n--;
		run = p;
	}
	put(s, run, (size_t)(p - run));
	return put(s, "\"", 1);
}

static int
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* Body of a JSON string literal (between the quotes) is well formed. */
static int
jstring_body_ok(const unsigned char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		if (*p == '\\') {
			if (n < 2 || strchr("\"\\/bfnrtu", p[1]) == NULL ||
			    p[1] == '\0')
				return 0;
			k = 2;
			if (p[1] == 'u') {
				if (n < 6 || !is_hex(p[2]) || !is_hex(p[3]) ||
				    !is_hex(p[4]) || !is_hex(p[5]))
					return 0;
				k = 6;
			}
		} else if (*p < 0x20 || *p == '"' ||
		    (k = utf8_seq(p, n)) == 0)
			return 0;
		p += k;
		n -= k;
	}
	return 1;
}

/*
 * Check that id is the text of an id as witch__id_format() writes it (an
 * integer or a string literal) or "null", so a reply is always valid JSON.
 * NULL or "" mean "null".
 */
static const char *
check_id(const char *id)
{
	size_t n, i;

	if (id == NULL || id[0] == '\0')
		return "null";
	n = strlen(id);
	if (n > WITCH__ID_MAX)
		return NULL;
	if (strcmp(id, "null") == 0)
		return id;
	if (id[0] == '"')
		return n >= 2 && id[n - 1] == '"' &&
		    jstring_body_ok((const unsigned char *)id + 1, n - 2) ?
		    id : NULL;
	i = id[0] == '-';
	if (i == n)
		return NULL;
	for (; i < n; i++)
		if (id[i] < '0' || id[i] > '9')
			return NULL;
	return id;
}

/*
 * Append the frame {"id":<id>,"result":<result>} to out (result NULL is
 * null).  max_payload caps the JSON payload (0: only the 32-bit frame
 * length).  Returns 0, WITCH_ETOO_LARGE, WITCH_ENOMEM, or WITCH_EINVAL for
 * a malformed id or a result jansson cannot serialise; on failure out is
 * left as it was.  The thread that owns out.
 */
int
witch__reply_result(struct witch__buf *out, const char *id,
    const json_t *result, size_t max_payload)
{
	struct sink s;
	int rc;

	if ((id = check_id(id)) == NULL)
		return WITCH_EINVAL;
	if ((rc = begin(&s, out, max_payload)) != 0)
		return finish(&s, rc);
	put_str(&s, "{\"id\":");
	put_str(&s, id);
	put_str(&s, ",\"result\":");
	if (result == NULL)
		put_str(&s, "null");
	else if (json_dump_callback(result, dump_cb, &s,
	    JSON_COMPACT | JSON_ENCODE_ANY) != 0)
		rc = WITCH_EINVAL;
	put_str(&s, "}");
	return finish(&s, rc);
}

/*
 * Append {"id":<id>,"result":<parts...>} where the parts are JSON text the
 * caller has validated (e.g. a request's data spliced into an echo).  No
 * DOM, no re-serialisation.  Same returns as witch__reply_result().
 */
int
witch__reply_result_raw(struct witch__buf *out, const char *id,
    const char *const *parts, const size_t *lens, size_t nparts,
    size_t max_payload)
{
	static const char head[] = "{\"id\":", mid[] = ",\"result\":";
	size_t i, idn, payload, max;
	unsigned char *p;
	int rc;

	if ((id = check_id(id)) == NULL)
		return WITCH_EINVAL;
	max = max_payload == 0 || max_payload > UINT32_MAX ?
	    UINT32_MAX : max_payload;
	/* Every piece's length is known: size it, reserve once, copy. */
	idn = strlen(id);
	payload = sizeof(head) - 1 + idn + sizeof(mid) - 1 + 1;
	for (i = 0; i < nparts; i++) {
		if (lens[i] > max || payload > max - lens[i])
			return WITCH_ETOO_LARGE;
		payload += lens[i];
	}
	if (payload > max)
		return WITCH_ETOO_LARGE;
	if ((rc = witch__buf_reserve(out, WITCH__FRAME_HDR + payload)) != 0)
		return rc;
	p = out->data + out->len;
	witch__frame_put_header(p, (uint32_t)payload);
	p += WITCH__FRAME_HDR;
	memcpy(p, head, sizeof(head) - 1);
	p += sizeof(head) - 1;
	memcpy(p, id, idn);
	p += idn;
	memcpy(p, mid, sizeof(mid) - 1);
	p += sizeof(mid) - 1;
	for (i = 0; i < nparts; i++) {
		memcpy(p, parts[i], lens[i]);
		p += lens[i];
	}
	*p = '}';
	out->len += WITCH__FRAME_HDR + payload;
	return 0;
}

/*
 * Append the frame {"id":<id>,"error":{"code":<slug>,"message":<message>}}
 * to out.  The slug is witch_err_name(code); message is any text (NULL:
 * witch_strerror(code)), escaped, with invalid UTF-8 replaced by U+FFFD.
 * Returns 0, WITCH_ENOMEM, WITCH_ETOO_LARGE (out's own limit) or
 * WITCH_EINVAL (malformed id); on failure out is left as it was.
 */
int
witch__reply_error(struct witch__buf *out, const char *id, int code,
    const char *message)
{
	struct sink s;
	int rc;

	if ((id = check_id(id)) == NULL)
		return WITCH_EINVAL;
	if (message == NULL)
		message = witch_strerror(code);
	if ((rc = begin(&s, out, 0)) != 0)
		return finish(&s, rc);
	put_str(&s, "{\"id\":");
	put_str(&s, id);
	put_str(&s, ",\"error\":{\"code\":");
	put_jstring(&s, witch_err_name(code));
	put_str(&s, ",\"message\":");
	put_jstring(&s, message);
	put_str(&s, "}}");
	return finish(&s, 0);
}

/*
 * Append the frame {"event":<event>,"data":<data>} to out (data NULL is
 * {}).  event is escaped like an error message.  Returns 0, WITCH_ENOMEM,
 * WITCH_ETOO_LARGE or WITCH_EINVAL (event NULL, or data jansson cannot
 * serialise); on failure out is left as it was.
 */
int
witch__reply_event(struct witch__buf *out, const char *event,
    const json_t *data)
{
	struct sink s;
	int rc;

	if (event == NULL)
		return WITCH_EINVAL;
	if ((rc = begin(&s, out, 0)) != 0)
		return finish(&s, rc);
	put_str(&s, "{\"event\":");
	put_jstring(&s, event);
	put_str(&s, ",\"data\":");
	if (data == NULL)
		put_str(&s, "{}");
	else if (json_dump_callback(data, dump_cb, &s,
	    JSON_COMPACT | JSON_ENCODE_ANY) != 0)
		rc = WITCH_EINVAL;
	put_str(&s, "}");
	return finish(&s, rc);
}
