/*
 * test_headers_c11: the umbrella header compiles as strict C11 with
 * -pedantic -Werror on its own (no config.h, no _GNU_SOURCE), and links.
 */
#include <witch/witch.h>

#include <string.h>

int
main(void)
{
	return strcmp(witch_version(), WITCH_VERSION_STRING) != 0;
}
