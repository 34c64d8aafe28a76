/*
 * core/error.h: internal helpers over the WITCH_ERRORS list of
 * <witch/error.h>: how many codes there are, and which are real.
 */
#ifndef WITCH__CORE_ERROR_H
#define WITCH__CORE_ERROR_H

#include <stdbool.h>

#include <witch/error.h>

/* The largest -code of the list, as the size of a union of char[n]. */
#define WITCH__ERR_SIZE_(n, name, slug, text) char e_##name[n];
union witch__err_codes {
	WITCH_ERRORS(WITCH__ERR_SIZE_)
};
#undef WITCH__ERR_SIZE_

/*
 * Slots of a table indexed by -code (slot 0 unused): grows by itself when
 * a code is appended to WITCH_ERRORS.
 */
#define WITCH__ERR_SLOTS (sizeof(union witch__err_codes) + 1)

/* True if code is one of WITCH_ERRORS (WITCH_OK is not).  Any thread. */
bool witch__err_known(int code);

#endif
