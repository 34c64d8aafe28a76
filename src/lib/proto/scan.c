/*
 * proto/scan.c: allocation-free JSON validation, equivalent to jansson's
 * json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL).  See scan.h.
 *
 * Recursive descent; the recursion is bounded by the 2048 nesting limit
 * jansson applies (JSON_PARSER_MAX_DEPTH, counted for every value, scalars
 * included), a few dozen bytes of stack per level.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <witch/error.h>

#include "core/alloc.h"
#include "proto/scan.h"

#ifndef JSON_PARSER_MAX_DEPTH
#define JSON_PARSER_MAX_DEPTH 2048
#endif

struct scan {
	const unsigned char	*p;
	const unsigned char	*end;
	int			 depth;
	int			 err;		/* WITCH_EPARSE or _EINVALID_REQ */
	struct witch__jcost	 cost;		/* what a DOM of it would be */
};

static int value(struct scan *, struct witch__jspan *);
static struct witch__jspan *escaped_slot(const unsigned char *,
    const unsigned char *, struct witch__jmember *, size_t);

static void
ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
fail(struct scan *s, int err)
{
	if (s->err == 0)
		s->err = err;
	return -1;
}

/* Four hex digits at s->p into *v. */
static int
hex4(struct scan *s, unsigned *v)
{
	unsigned i, c, r = 0;

	if (s->end - s->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		c = s->p[i];
		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else if (c >= 'A' && c <= 'F')
			c -= 'A' - 10;
		else
			return -1;
		r = r << 4 | c;
	}
	s->p += 4;
	*v = r;
	return 0;
}

/* One UTF-8 sequence of 2..4 bytes starting at s->p (first byte >= 0x80). */
static int
utf8(struct scan *s)
{
	const unsigned char *p = s->p;
	unsigned c = *p, n, v, i;

	if (c < 0xc2)
		return -1;		/* continuation byte or overlong */
	else if (c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c <= 0xef) {
		n = 3;
		v = c & 0x0f;
	} else if (c <= 0xf4) {
		n = 4;
		v = c & 0x07;
	} else
		return -1;
	if ((size_t)(s->end - p) < n)
		return -1;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		v = v << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
	    (n == 4 && (v < 0x10000 || v > 0x10ffff)))
		return -1;
	s->p += n;
	return 0;
}

/*
 * Skip the plain bytes of a string: printable ASCII other than '"' and
 * '\\'.  Eight bytes at a time (SWAR): a word is plain when no byte is
 * < 0x20, >= 0x80, '"' or '\\'.  Most payload text is plain, so this is
 * where a 4 KiB echo spends its time.
 */
static void
skip_plain(struct scan *s)
{
	const uint64_t ones = 0x0101010101010101ull;
	const uint64_t highs = 0x8080808080808080ull;
	uint64_t w, q, b;

	while (s->end - s->p >= 8) {
		memcpy(&w, s->p, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		/* high bit set in a byte of (x - 1s) & ~x  <=>  that byte is 0 */
		w = ((w - ones * 0x20) | ((q - ones) & ~q) | ((b - ones) & ~b) |
		    w) & highs;
		if (w != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			/*
			 * The lowest flagged byte is exact: a borrow only
			 * propagates upwards from a byte that is itself
			 * flagged.  Skip the plain bytes before it.
			 */
			s->p += (unsigned)__builtin_ctzll(w) >> 3;
			return;
#else
			break;
#endif
		}
		s->p += 8;
	}
	while (s->p < s->end && *s->p >= 0x20 && *s->p < 0x80 &&
	    *s->p != '"' && *s->p != '\\')
		s->p++;
}

/* A string at s->p (the opening quote).  is_key: NUL is not allowed. */
static int
string(struct scan *s, int is_key, bool *escaped)
{
	unsigned c, u, lo;
	bool nul = false;

	s->p++;
	for (;;) {
		skip_plain(s);
		if (s->p >= s->end)
			return fail(s, WITCH_EPARSE);
		c = *s->p;
		if (c == '"') {
			s->p++;
			/* jansson checks a key for NUL once it is complete. */
			if (nul)
				return fail(s, WITCH_EINVALID_REQUEST);
			return 0;
		}
		if (c < 0x20)
			return fail(s, WITCH_EPARSE);
		if (c >= 0x80) {
			if (utf8(s) != 0)
				return fail(s, WITCH_EPARSE);
			continue;
		}
		s->p++;
		if (c != '\\')
			continue;
		*escaped = true;
		if (s->p >= s->end)
			return fail(s, WITCH_EPARSE);
		c = *s->p++;
		switch (c) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n':
		case 'r': case 't':
			break;
		case 'u':
			if (hex4(s, &u) != 0)
				return fail(s, WITCH_EPARSE);
			if (u >= 0xdc00 && u <= 0xdfff)
				return fail(s, WITCH_EPARSE);	/* lone low */
			if (u >= 0xd800 && u <= 0xdbff) {
				if (s->end - s->p < 6 || s->p[0] != '\\' ||
				    s->p[1] != 'u')
					return fail(s, WITCH_EPARSE);
				s->p += 2;
				if (hex4(s, &lo) != 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					return fail(s, WITCH_EPARSE);
			}
			if (u == 0 && is_key)
				nul = true;
			break;
		default:
			return fail(s, WITCH_EPARSE);
		}
	}
}

/* Does the integer text [b, e) (optional '-', digits) fit int64_t? */
static int
int_fits(const unsigned char *b, const unsigned char *e)
{
	uint64_t v = 0, lim;
	int neg = 0;

	if (*b == '-') {
		neg = 1;
		b++;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; b < e; b++) {
		if (v > (lim - (*b - '0')) / 10)
			return 0;
		v = v * 10 + (*b - '0');
	}
	return 1;
}

/* Does the real text [b, e) convert without overflow (as jansson's)? */
static int
real_fits(const unsigned char *b, const unsigned char *e)
{
	char small[64], *t = small, *endp;
	size_t n = (size_t)(e - b);
	double d;
	int ok;

	if (n >= sizeof(small) && (t = witch__malloc(n + 1)) == NULL)
		return -1;
	memcpy(t, b, n);
	t[n] = '\0';
	errno = 0;
	d = strtod(t, &endp);
	ok = !((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE);
	if (t != small)
		witch__free(t);
	return ok;
}

static int
number(struct scan *s, struct witch__jspan *sp)
{
	const unsigned char *b = s->p;
	int real = 0, r;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return fail(s, WITCH_EPARSE);
	if (*s->p == '0') {
		s->p++;
	} else if (*s->p >= '1' && *s->p <= '9') {
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	} else
		return fail(s, WITCH_EPARSE);
	if (s->p < s->end && *s->p == '.') {
		real = 1;
		s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return fail(s, WITCH_EPARSE);
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		real = 1;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return fail(s, WITCH_EPARSE);
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (!real) {
		/* jansson: "01" is an invalid token, not 0 then 1. */
		if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			return fail(s, WITCH_EPARSE);
		if (!int_fits(b, s->p))
			return fail(s, WITCH_EPARSE);
	} else if ((r = real_fits(b, s->p)) != 1)
		return fail(s, WITCH_EPARSE);
	sp->type = real ? WITCH__J_REAL : WITCH__J_INT;
	return 0;
}

static int
literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, WITCH_EPARSE);
	s->p += n;
	return 0;
}

/*
 * A non-empty container at s->depth holds values one level deeper.  The
 * deepest value is a leaf (a scalar or an empty container) one level
 * below a non-empty container, or the top-level value (depth 1, set at
 * the start), so noting it here, once per container rather than once
 * per value, finds the same maximum.
 */
static inline void
deeper(struct scan *s)
{
	if ((unsigned)s->depth + 1 > s->cost.depth)
		s->cost.depth = (unsigned)s->depth + 1;
}

static int
array(struct scan *s)
{
	struct witch__jspan sp;

	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	deeper(s);
	for (;;) {
		if (value(s, &sp) != 0)
			return -1;
		ws(s);
		if (s->p >= s->end)
			return fail(s, WITCH_EPARSE);
		if (*s->p == ']') {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return fail(s, WITCH_EPARSE);
	}
}

/* Compare an unescaped key [k, k+n) with a member name. */
static inline struct witch__jspan *
member_slot(const unsigned char *k, size_t n, struct witch__jmember *m,
    size_t nm)
{
	size_t i;

	for (i = 0; i < nm; i++)
		if (m[i].len == n && m[i].name[0] == k[0] &&
		    memcmp(m[i].name, k, n) == 0)
			return m[i].span;
	return NULL;
}

static int
object(struct scan *s, struct witch__jmember *m, size_t nm, bool *kesc)
{
	struct witch__jspan sp, *slot;
	const unsigned char *k;
	bool esc;

	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	deeper(s);
	for (;;) {
		if (s->p >= s->end || *s->p != '"')
			return fail(s, WITCH_EPARSE);
		k = s->p + 1;
		esc = false;
		if (string(s, 1, &esc) != 0)
			return -1;
		s->cost.bytes += WITCH__JCOST_KEY;
		slot = NULL;
		if (esc && kesc != NULL)
			*kesc = true;
		if (nm > 0)
			slot = esc ? escaped_slot(k - 1, s->p, m, nm) :
			    member_slot(k, (size_t)(s->p - 1 - k), m, nm);
		ws(s);
		if (s->p >= s->end || *s->p++ != ':')
			return fail(s, WITCH_EPARSE);
		if (value(s, &sp) != 0)
			return -1;
		if (slot != NULL)
			*slot = sp;
		ws(s);
		if (s->p >= s->end)
			return fail(s, WITCH_EPARSE);
		if (*s->p == '}') {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return fail(s, WITCH_EPARSE);
		ws(s);
	}
}

/* One value; sp gets its span and type. */
static int
value(struct scan *s, struct witch__jspan *sp)
{
	int rc;

	ws(s);
	if (s->p >= s->end)
		return fail(s, WITCH_EPARSE);
	sp->p = (const char *)s->p;
	sp->escaped = false;
	/* jansson counts every value, scalars included, against the limit. */
	if (++s->depth > JSON_PARSER_MAX_DEPTH)
		return fail(s, WITCH_EPARSE);
	switch (*s->p) {
	case '{':
		sp->type = WITCH__J_OBJECT;
		s->cost.bytes += WITCH__JCOST_OBJECT;
		rc = object(s, NULL, 0, NULL);
		break;
	case '[':
		sp->type = WITCH__J_ARRAY;
		s->cost.bytes += WITCH__JCOST_ARRAY;
		rc = array(s);
		break;
	case '"':
		sp->type = WITCH__J_STRING;
		s->cost.bytes += WITCH__JCOST_STRING;
		rc = string(s, 0, &sp->escaped);
		break;
	case 't':
		sp->type = WITCH__J_TRUE;
		s->cost.bytes += WITCH__JCOST_LITERAL;
		rc = literal(s, "true", 4);
		break;
	case 'f':
		sp->type = WITCH__J_FALSE;
		s->cost.bytes += WITCH__JCOST_LITERAL;
		rc = literal(s, "false", 5);
		break;
	case 'n':
		sp->type = WITCH__J_NULL;
		s->cost.bytes += WITCH__JCOST_LITERAL;
		rc = literal(s, "null", 4);
		break;
	default:
		s->cost.bytes += WITCH__JCOST_NUMBER;
		rc = number(s, sp);
		break;
	}
	s->depth--;
	if (rc == 0)
		sp->len = (size_t)((const char *)s->p - sp->p);
	return rc;
}

int
witch__json_scan(const char *buf, size_t len, enum witch__jtype *top,
    struct witch__jmember *members, size_t nmembers, bool *key_escaped)
{
	return witch__json_scan_cost(buf, len, top, members, nmembers,
	    key_escaped, NULL);
}

int
witch__json_scan_cost(const char *buf, size_t len, enum witch__jtype *top,
    struct witch__jmember *members, size_t nmembers, bool *key_escaped,
    struct witch__jcost *cost)
{
	struct scan s;
	struct witch__jspan sp;
	size_t i;
	int rc;

	s.p = (const unsigned char *)buf;
	s.end = s.p + len;
	s.depth = 0;
	s.err = 0;
	s.cost.depth = 1;	/* a valid text holds one value at least */
	s.cost.bytes = len;
	*top = WITCH__J_NONE;
	*key_escaped = false;
	for (i = 0; i < nmembers; i++)
		memset(members[i].span, 0, sizeof(*members[i].span));
	ws(&s);
	if (s.p < s.end && *s.p == '{') {
		/* The top-level object: report the chosen members. */
		s.depth = 1;
		s.cost.bytes += WITCH__JCOST_OBJECT;
		sp.p = (const char *)s.p;
		rc = object(&s, members, nmembers, key_escaped);
		*top = WITCH__J_OBJECT;
	} else {
		rc = value(&s, &sp);
		*top = sp.type;
	}
	if (rc == 0) {
		ws(&s);
		if (s.p != s.end)
			rc = fail(&s, WITCH_EPARSE);
	}
	if (rc != 0 || s.err != 0)
		return s.err != 0 ? s.err : WITCH_EPARSE;
	if (cost != NULL)
		*cost = s.cost;
	return 0;
}

bool
witch__json_array_next(const struct witch__jspan *arr, size_t *pos,
    struct witch__jspan *el)
{
	struct scan s;

	if (arr->type != WITCH__J_ARRAY || *pos >= arr->len)
		return false;
	s.p = (const unsigned char *)arr->p + *pos;
	s.end = (const unsigned char *)arr->p + arr->len;
	s.depth = 0;
	s.err = 0;
	s.cost.depth = 0;	/* counted, not used */
	s.cost.bytes = 0;
	if (*pos == 0)
		s.p++;			/* '[' */
	ws(&s);
	if (s.p < s.end && *s.p == ',')
		s.p++;
	ws(&s);
	if (s.p >= s.end || *s.p == ']' || value(&s, el) != 0) {
		*pos = arr->len;
		return false;
	}
	*pos = (size_t)((const char *)s.p - arr->p);
	return true;
}

/* UTF-8 of code point u into b (room for 4); its length. */
static size_t
put_utf8(unsigned u, char *b)
{
	if (u < 0x80) {
		b[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		b[0] = (char)(0xc0 | u >> 6);
		b[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		b[0] = (char)(0xe0 | u >> 12);
		b[1] = (char)(0x80 | (u >> 6 & 0x3f));
		b[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | u >> 18);
	b[1] = (char)(0x80 | (u >> 12 & 0x3f));
	b[2] = (char)(0x80 | (u >> 6 & 0x3f));
	b[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

size_t
witch__json_string_copy(const struct witch__jspan *str, char *buf,
    size_t size)
{
	struct scan s;
	char tmp[4];
	size_t n = 0, k, i;
	unsigned u, lo;
	int c;

	s.p = (const unsigned char *)str->p + 1;
	s.end = (const unsigned char *)str->p + str->len - 1;	/* '"' */
	while (s.p < s.end) {
		c = *s.p++;
		k = 1;
		tmp[0] = (char)c;
		if (c == '\\') {
			c = *s.p++;
			switch (c) {
			case 'b': tmp[0] = '\b'; break;
			case 'f': tmp[0] = '\f'; break;
			case 'n': tmp[0] = '\n'; break;
			case 'r': tmp[0] = '\r'; break;
			case 't': tmp[0] = '\t'; break;
			case 'u':
				(void)hex4(&s, &u);
				if (u >= 0xd800 && u <= 0xdbff) {
					s.p += 2;	/* its "\\u" */
					(void)hex4(&s, &lo);
					u = 0x10000 + ((u - 0xd800) << 10) +
					    (lo - 0xdc00);
				}
				if (u == 0)
					goto done;
				k = put_utf8(u, tmp);
				break;
			default:
				tmp[0] = (char)c;	/* " \\ / */
				break;
			}
		}
		for (i = 0; i < k; i++, n++)
			if (n + 1 < size)
				buf[n] = tmp[i];
	}
done:
	if (size > 0)
		buf[n < size ? n : size - 1] = '\0';
	return n;
}

/* An escaped key [q, e) (with its quotes) matched after decoding. */
static struct witch__jspan *
escaped_slot(const unsigned char *q, const unsigned char *e,
    struct witch__jmember *m, size_t nm)
{
	struct witch__jspan key;
	char name[32];
	size_t n;

	key.p = (const char *)q;
	key.len = (size_t)(e - q);
	key.type = WITCH__J_STRING;
	key.escaped = true;
	if (key.len > 6 * sizeof(name) ||
	    (n = witch__json_string_copy(&key, name, sizeof(name))) >=
	    sizeof(name) || n == 0)
		return NULL;
	return member_slot((const unsigned char *)name, n, m, nm);
}
