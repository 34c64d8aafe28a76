/*
 * core/setter.c: configuration setters from a table (core/setter.h).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <witch/error.h>

#include "core/setter.h"

int
witch__set_num(void *obj, const struct witch__field *f, uint64_t v)
{
	char *p = obj;

	if (obj == NULL || v < f->min || v > f->max)
		return WITCH_EINVAL;
	switch (f->kind) {
	case WITCH__FIELD_UNSIGNED:
		*(unsigned *)(void *)(p + f->off) = (unsigned)v;
		return 0;
	case WITCH__FIELD_SIZE:
		*(size_t *)(void *)(p + f->off) = (size_t)v;
		return 0;
	case WITCH__FIELD_U64:
		*(uint64_t *)(void *)(p + f->off) = v;
		return 0;
	default:
		return WITCH_EINVAL;
	}
}

int
witch__set_bool(void *obj, const struct witch__field *f, bool on)
{
	char *p = obj;

	if (obj == NULL || f->kind != WITCH__FIELD_BOOL)
		return WITCH_EINVAL;
	*(bool *)(void *)(p + f->off) = on;
	return 0;
}

int
witch__set_text(void *obj, const struct witch__field *f, const char *s)
{
	char *p = obj;

	if (obj == NULL || f->kind != WITCH__FIELD_TEXT)
		return WITCH_EINVAL;
	if (s == NULL) {
		if (!f->null_clears)
			return WITCH_EINVAL;
		p[f->off] = '\0';
		return 0;
	}
	if (strlen(s) >= f->size || (f->valid != NULL && !f->valid(s)))
		return WITCH_EINVAL;
	strlcpy(p + f->off, s, f->size);
	return 0;
}

int
witch__text_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int
witch__text_printable_nonempty(const char *s)
{
	return s[0] != '\0' && witch__text_printable(s);
}

int
witch__text_nonempty(const char *s)
{
	return s[0] != '\0';
}
