/*
 * common/secs.h: the one parser of durations on the command lines and in
 * the configuration file of witchd and witchctl, so that both accept the
 * same spellings.  Compiled into each program (they link only the public
 * libwitch, which has no such helper); no state, any thread.
 */
#ifndef WITCH_COMMON_SECS_H
#define WITCH_COMMON_SECS_H

/*
 * Parse s, seconds written as a plain decimal number: digits with at most
 * one '.' and a digit on at least one side of it ("2", "0.25", ".5",
 * "3.").  No sign, exponent, hexadecimal, inf/nan or blanks.  Stores the
 * value in *secs and returns 0, or returns -1 and leaves *secs alone.
 */
int	secs_parse(const char *s, double *secs);

#endif /* WITCH_COMMON_SECS_H */
