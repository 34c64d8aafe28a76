/*
 * common/secs.c: durations in seconds, for witchd and witchctl (see
 * secs.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "secs.h"

int
secs_parse(const char *s, double *secs)
{
	size_t digits = strspn(s, "0123456789"), frac = 0;
	const char *p = s + digits;
	char *end;
	double v;

	if (*p == '.') {
		frac = strspn(p + 1, "0123456789");
		p += 1 + frac;
	}
	if (*p != '\0' || digits + frac == 0 || digits > 15)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v))
		return -1;
	*secs = v;
	return 0;
}
