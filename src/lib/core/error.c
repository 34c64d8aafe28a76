/*
 * core/error.c: witch_strerror(), witch_err_name(), witch_err_from_name(),
 * witch__err_known().
 * Generated from the WITCH_ERRORS X-macro so the three never disagree.
 */
#include <string.h>

#include <witch/error.h>

#include "core/error.h"

struct errdesc {
	int		 code;
	const char	*slug;
	const char	*text;
};

static const struct errdesc errtab[] = {
#define X(n, name, slug, text) { -(n), slug, text },
	WITCH_ERRORS(X)
#undef X
};

static const struct errdesc *
find(int code)
{
	size_t i;

	for (i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (errtab[i].code == code)
			return &errtab[i];
	return NULL;
}

bool
witch__err_known(int code)
{
	return code < 0 && find(code) != NULL;
}

const char *
witch_strerror(int code)
{
	const struct errdesc *d;

	if (code == WITCH_OK)
		return "success";
	d = find(code);
	return d != NULL ? d->text : "unknown error";
}

const char *
witch_err_name(int code)
{
	const struct errdesc *d;

	if (code == WITCH_OK)
		return "ok";
	d = find(code);
	return d != NULL ? d->slug : "unknown";
}

int
witch_err_from_name(const char *slug)
{
	size_t i;

	if (slug == NULL)
		return WITCH_EINVAL;
	if (strcmp(slug, "ok") == 0)
		return WITCH_OK;
	for (i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (strcmp(errtab[i].slug, slug) == 0)
			return errtab[i].code;
	return WITCH_EINVAL;
}
