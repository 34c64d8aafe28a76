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

#include <stdbool.h>
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
/*
 * For memory handed out without an allocation (a block from a cache): is
 * this the allocation set to fail?  Counts as one, as witch__malloc
 * would, so the failure paths behind a warm cache stay testable.
 */
bool witch__alloc_fail_due(void);

/*
 * AddressSanitizer builds: mark bytes of a block we keep cached as not to
 * be touched (POISON) and as usable again (UNPOISON), so a use of a block
 * after it went back to a cache is reported as a use after free would be.
 * No-ops otherwise.
 */
#if defined(__SANITIZE_ADDRESS__)
#define WITCH__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WITCH__ASAN 1
#endif
#endif
#ifdef WITCH__ASAN
#include <sanitizer/asan_interface.h>
#define WITCH__POISON(p, n)	ASAN_POISON_MEMORY_REGION((p), (n))
#define WITCH__UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WITCH__POISON(p, n)	((void)(p), (void)(n))
#define WITCH__UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#endif
