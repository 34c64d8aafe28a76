/*
 * core/alloc.c: allocation wrapper with a failure-injection hook.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Countdown to the injected failure; 0 when disabled. */
static atomic_long fail_countdown;

static int
should_fail(void)
{
	long v = atomic_load_explicit(&fail_countdown, memory_order_relaxed);

	while (v > 0) {
		if (atomic_compare_exchange_weak_explicit(&fail_countdown, &v,
		    v - 1, memory_order_relaxed, memory_order_relaxed))
			return v == 1;
	}
	return 0;
}

bool
witch__alloc_fail_due(void)
{
	return should_fail() != 0;
}

long
witch__alloc_fail_after(long n)
{
	return atomic_exchange(&fail_countdown, n < 0 ? 0 : n);
}

void *
witch__malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *
witch__calloc(size_t nmemb, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *
witch__realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void *
witch__reallocarray(void *p, size_t nmemb, size_t size)
{
	if (should_fail())
		return NULL;
	return reallocarray(p, nmemb ? nmemb : 1, size ? size : 1);
}

char *
witch__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = witch__malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

void
witch__free(void *p)
{
	free(p);
}
