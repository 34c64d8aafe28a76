/*
 * tests/fuzz/replay.c: a main() for the fuzz targets when libFuzzer is not
 * used, so that `make check` replays the seed corpus.
 *
 * usage: fuzz_<target> [file-or-directory ...]
 * Without arguments it replays $WITCH_SRCDIR/tests/fuzz/corpus/<target>/.
 * Exits 1 when there is nothing to replay: a missing or empty corpus must
 * not pass silently.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "common.h"

#ifndef WITCH_FUZZ_TARGET
#error "define WITCH_FUZZ_TARGET, e.g. -DWITCH_FUZZ_TARGET=\"frame\""
#endif

static int
replay_file(const char *path, size_t *count)
{
	unsigned char *p = NULL;
	struct stat st;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1)
		goto fail;
	n = (size_t)st.st_size;
	/* Exactly n bytes, so ASan sees any read past the input. */
	if ((p = witch__malloc(n)) == NULL)
		goto fail;
	if (n > 0 && fread(p, 1, n, f) != n)
		goto fail;
	fclose(f);
	(void)LLVMFuzzerTestOneInput(p, n);
	witch__free(p);
	(*count)++;
	return 0;

fail:
	fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
	witch__free(p);
	if (f != NULL)
		fclose(f);
	return -1;
}

static int
replay_path(const char *path, size_t *count)
{
	char sub[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
		    de->d_name) >= sizeof(sub)) {
			fprintf(stderr, "replay: %s/%s: path too long\n", path,
			    de->d_name);
			rc = -1;
			break;
		}
		rc = replay_path(sub, count);
	}
	closedir(d);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *srcdir;
	char dir[4096];
	size_t count = 0;
	int i;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (replay_path(argv[i], &count) != 0)
				return 1;
	} else {
		if ((srcdir = getenv("WITCH_SRCDIR")) == NULL) {
			fprintf(stderr, "replay: give corpus paths or set "
			    "WITCH_SRCDIR\n");
			return 1;
		}
		(void)snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
		    srcdir, WITCH_FUZZ_TARGET);
		if (replay_path(dir, &count) != 0)
			return 1;
	}
	if (count == 0) {
		fprintf(stderr, "replay %s: no inputs found\n",
		    WITCH_FUZZ_TARGET);
		return 1;
	}
	printf("replay %s: replayed %zu inputs\n", WITCH_FUZZ_TARGET, count);
	return 0;
}
