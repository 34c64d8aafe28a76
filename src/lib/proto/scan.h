/*
 * proto/scan.h: an allocation-free JSON validator and envelope scanner.
 *
 * witch__json_scan() accepts exactly what jansson's json_loadb() accepts
 * with JSON_DECODE_ANY | JSON_ALLOW_NUL (RFC 8259 plus jansson's limits:
 * nesting depth 2048 counted over every value, integers that fit int64_t,
 * reals that do not overflow, strict UTF-8, surrogate pairs in \u
 * escapes), without building a DOM.  One jansson quirk is not copied: it
 * takes a raw NUL right after a number or literal as the end of input
 * ("123\0" parses); the scanner rejects that, and so does
 * witch__request_parse() before calling jansson (framing.md, "Strict
 * JSON").  The fuzz target checks on every input that the scanner agrees
 * with jansson once that rule is applied to jansson's verdict.  While
 * scanning, it reports the spans of chosen top-level object members, so
 * the request envelope can be read without parsing "data" at all.
 */
#ifndef WITCH__PROTO_SCAN_H
#define WITCH__PROTO_SCAN_H

#include <stdbool.h>
#include <stddef.h>

enum witch__jtype {
	WITCH__J_NONE = 0,	/* member absent */
	WITCH__J_OBJECT,
	WITCH__J_ARRAY,
	WITCH__J_STRING,
	WITCH__J_INT,
	WITCH__J_REAL,
	WITCH__J_TRUE,
	WITCH__J_FALSE,
	WITCH__J_NULL
};

/* The text of one JSON value inside the scanned buffer. */
struct witch__jspan {
	const char		*p;
	size_t			 len;
	enum witch__jtype	 type;
	bool			 escaped;	/* a string with backslashes */
};

/* A top-level member to report: name (plain ASCII), its length, where to. */
struct witch__jmember {
	const char		*name;
	size_t			 len;	/* strlen(name) */
	struct witch__jspan	*span;
};

/*
 * Validate buf[0..len) as one JSON text.  Returns 0, WITCH_EPARSE, or
 * WITCH_EINVALID_REQUEST for valid JSON that jansson cannot hold (a NUL
 * in an object key).  *top gets the type of the top-level value.  When it
 * is an object, each member whose key equals members[i].name gets its
 * value's span (the last one wins, as in jansson); a key with backslash
 * escapes is matched after decoding, and sets *key_escaped.  Pure; any
 * thread.
 */
int witch__json_scan(const char *buf, size_t len, enum witch__jtype *top,
    struct witch__jmember *members, size_t nmembers, bool *key_escaped);

/*
 * Heap bytes of one element of a jansson tree, measured on jansson 2.14 /
 * glibc x86-64 (heap per element, array slots and malloc overhead
 * included): an object, an array, a member key, a string (plus its text,
 * counted in the text's length), a number, a literal (a shared singleton
 * and its slot).  Their sum over a text's elements plus its length is an
 * upper estimate within ~10% for the pathological shapes (`[{},{},...]`:
 * 268 per element measured).
 */
#define WITCH__JCOST_OBJECT	272
#define WITCH__JCOST_ARRAY	176
#define WITCH__JCOST_KEY	96
#define WITCH__JCOST_STRING	112
#define WITCH__JCOST_NUMBER	72
#define WITCH__JCOST_LITERAL	32

/* What a DOM of a scanned text would take. */
struct witch__jcost {
	unsigned	 depth;	/* deepest value; the top level is 1,
				 * scalars count, as jansson counts them */
	size_t		 bytes;	/* the estimate above: the text's length
				 * plus each element's WITCH__JCOST_* */
};

/*
 * witch__json_scan(), and on success what a DOM of the text would take
 * in *cost (may be NULL).  The estimate is added up in the same pass
 * that validates the text and finds the members (each element adds its
 * size as it is scanned), not in a second walk.  Pure; any thread.
 */
int witch__json_scan_cost(const char *buf, size_t len, enum witch__jtype *top,
    struct witch__jmember *members, size_t nmembers, bool *key_escaped,
    struct witch__jcost *cost);

/*
 * The elements of an array span that witch__json_scan() accepted, one
 * per call: *pos starts at 0; each call stores the next element's span in
 * *el and returns true, or returns false after the last.  Every byte is
 * looked at once over the whole walk; no allocation.  Pure; any thread.
 */
bool witch__json_array_next(const struct witch__jspan *arr, size_t *pos,
    struct witch__jspan *el);

/*
 * The value of a string span that witch__json_scan() accepted, escapes
 * decoded, into buf (size bytes, NUL-terminated, cut short to fit).
 * Returns the decoded length (as strlcpy: >= size means it was cut).  A
 * \u0000 ends the copy.  No allocation.  Pure; any thread.
 */
size_t witch__json_string_copy(const struct witch__jspan *str, char *buf,
    size_t size);

#endif
