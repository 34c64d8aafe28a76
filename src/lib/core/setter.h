/*
 * core/setter.h: configuration setters from a table.  A configuration
 * object (server, announcer, listener, client) describes each settable
 * field once, in a table of struct witch__field: where it is, its kind,
 * and what it accepts.  Each public setter is then one call,
 *
 *	return witch__set_num(cfg, &fields[F_PORT], port);
 *
 * which checks the object and the value and stores it, so the checks are
 * written once and every setter answers bad input the same way
 * (WITCH_EINVAL, nothing changed).  Fields that take several values at
 * once (protocol lists, output limits, a callback with its user data)
 * keep setters of their own.  Any thread (the object is the caller's).
 */
#ifndef WITCH__CORE_SETTER_H
#define WITCH__CORE_SETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum witch__field_kind {
	WITCH__FIELD_UNSIGNED = 1,	/* unsigned int */
	WITCH__FIELD_SIZE,		/* size_t */
	WITCH__FIELD_U64,		/* uint64_t */
	WITCH__FIELD_BOOL,		/* bool */
	WITCH__FIELD_TEXT		/* char[size], NUL-terminated */
};

struct witch__field {
	enum witch__field_kind	 kind;
	size_t			 off;	/* offsetof() in the object */
	size_t			 size;	/* TEXT: the array's size */
	uint64_t		 min, max;	/* numbers: accepted range */
	int			(*valid)(const char *);	/* TEXT: NULL: any */
	bool			 null_clears;	/* TEXT: NULL sets "" */
};

/* One table row: a number of type kind in [min, max]. */
#define WITCH__FIELD_NUM(type, kind, member, lo, hi) \
	{ (kind), offsetof(type, member), 0, (lo), (hi), NULL, false }
#define WITCH__FIELD_FLAG(type, member) \
	{ WITCH__FIELD_BOOL, offsetof(type, member), 0, 0, 1, NULL, false }
/* Text that fits member (a char array) and passes valid (may be NULL). */
#define WITCH__FIELD_STR(type, member, valid, null_clears) \
	{ WITCH__FIELD_TEXT, offsetof(type, member), \
	    sizeof(((type *)0)->member), 0, 0, (valid), (null_clears) }

/*
 * Store v (UNSIGNED, SIZE or U64 field), on (BOOL) or s (TEXT) in obj.
 * 0, or WITCH_EINVAL (obj NULL, value out of range, text too long,
 * rejected by valid, or NULL where it does not clear) with obj unchanged.
 */
int witch__set_num(void *obj, const struct witch__field *f, uint64_t v);
int witch__set_bool(void *obj, const struct witch__field *f, bool on);
int witch__set_text(void *obj, const struct witch__field *f, const char *s);

/*
 * Validators for TEXT fields: printable (no control bytes); printable and
 * not ""; any bytes but not "".
 */
int witch__text_printable(const char *s);
int witch__text_printable_nonempty(const char *s);
int witch__text_nonempty(const char *s);

#endif
