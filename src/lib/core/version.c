/*
 * core/version.c: run-time version of libwitch.
 */
#include <witch/version.h>

const char *
witch_version(void)
{
	return WITCH_VERSION_STRING;
}

unsigned
witch_version_number(void)
{
	return WITCH_VERSION_NUMBER;
}
