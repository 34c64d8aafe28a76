/*
 * core/alloc.h: the one allocation wrapper of libwitch.
 *
 * Every allocation libwitch makes for itself goes through these, so a test
 * can make the Nth allocation fail (witch__alloc_fail_after) and check that
 * each failure path returns WITCH_ENOMEM without leaking.  jansson's own
 * allocations are not routed here (that hook is process-global).
 */
#ifndef WITCH__CORE_ALLOC_H
#define WITCH__CORE_ALLOC_H

#include <stddef.h>

void *witch__malloc(size_t n);
void *witch__calloc(size_t nmemb, size_t size);
void *witch__realloc(void *p, size_t n);
void *witch__reallocarray(void *p, size_t nmemb, size_t size);
char *witch__strdup(const char *s);
void witch__free(void *p);

/*
 * Test hook: the n-th allocation from now fails (1 = the next one), and
 * every one after it succeeds again.  0 disables.  Returns the countdown
 * it replaces: above 0, the failure set before did not happen (a sweep
 * over n is then past the last allocation).  Any thread.
 */
long witch__alloc_fail_after(long n);

#endif
