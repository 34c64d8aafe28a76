/*
 * tests/unit/test_setter.c: configuration setters from a table
 * (core/setter.h): ranges, booleans, text with its checks, NULL, and that
 * a refused value leaves the object as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <witch/client.h>
#include <witch/error.h>
#include <witch/server.h>

#include "core/setter.h"

struct obj {
	unsigned	 port;
	size_t		 big;
	bool		 on;
	char		 name[8];
	char		 addr[8];
	uint64_t	 seed;
	char		 path[8];
};

static int
no_x(const char *s)
{
	return strchr(s, 'x') == NULL;
}

enum { F_PORT, F_BIG, F_ON, F_NAME, F_ADDR, F_SEED, F_PATH };
static const struct witch__field fields[] = {
	[F_PORT] = WITCH__FIELD_NUM(struct obj, WITCH__FIELD_UNSIGNED, port,
	    1, 65535),
	[F_BIG] = WITCH__FIELD_NUM(struct obj, WITCH__FIELD_SIZE, big, 0,
	    UINT64_C(1) << 40),
	[F_ON] = WITCH__FIELD_FLAG(struct obj, on),
	[F_NAME] = WITCH__FIELD_STR(struct obj, name,
	    witch__text_printable_nonempty, false),
	[F_ADDR] = WITCH__FIELD_STR(struct obj, addr, no_x, true),
	[F_SEED] = WITCH__FIELD_NUM(struct obj, WITCH__FIELD_U64, seed, 0,
	    UINT64_MAX),
	[F_PATH] = WITCH__FIELD_STR(struct obj, path, witch__text_nonempty,
	    true),
};

static void
test_numbers(void **state)
{
	struct obj o = { .port = 7 };

	assert_int_equal(witch__set_num(&o, &fields[F_PORT], 8888), 0);
	assert_int_equal(o.port, 8888);
	assert_int_equal(witch__set_num(&o, &fields[F_PORT], 0), WITCH_EINVAL);
	assert_int_equal(witch__set_num(&o, &fields[F_PORT], 65536),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_num(&o, &fields[F_PORT],
	    UINT64_C(1) << 32 | 80), WITCH_EINVAL);
	assert_int_equal(o.port, 8888);
	assert_int_equal(witch__set_num(NULL, &fields[F_PORT], 80),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_num(&o, &fields[F_BIG],
	    UINT64_C(1) << 40), 0);
	assert_true(o.big == (size_t)(UINT64_C(1) << 40));
	/* A number is not a flag, a flag not a number. */
	assert_int_equal(witch__set_bool(&o, &fields[F_PORT], true),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_num(&o, &fields[F_ON], 1), WITCH_EINVAL);
	assert_int_equal(witch__set_bool(&o, &fields[F_ON], true), 0);
	assert_true(o.on);
	assert_int_equal(witch__set_bool(NULL, &fields[F_ON], true),
	    WITCH_EINVAL);
}

static void
test_text(void **state)
{
	struct obj o;

	memset(&o, 0, sizeof(o));
	assert_int_equal(witch__set_text(&o, &fields[F_NAME], "abcdefg"), 0);
	assert_string_equal(o.name, "abcdefg");
	/* Too long for the array, empty, a control byte, NULL: refused. */
	assert_int_equal(witch__set_text(&o, &fields[F_NAME], "abcdefgh"),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_text(&o, &fields[F_NAME], ""),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_text(&o, &fields[F_NAME], "a\tb"),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_text(&o, &fields[F_NAME], NULL),
	    WITCH_EINVAL);
	assert_string_equal(o.name, "abcdefg");
	/* A field where NULL clears, with its own check. */
	assert_int_equal(witch__set_text(&o, &fields[F_ADDR], "1.2.3.4"), 0);
	assert_int_equal(witch__set_text(&o, &fields[F_ADDR], "x"),
	    WITCH_EINVAL);
	assert_string_equal(o.addr, "1.2.3.4");
	assert_int_equal(witch__set_text(&o, &fields[F_ADDR], NULL), 0);
	assert_string_equal(o.addr, "");
	assert_int_equal(witch__set_text(NULL, &fields[F_ADDR], "1"),
	    WITCH_EINVAL);
	assert_int_equal(witch__set_text(&o, &fields[F_PORT], "1"),
	    WITCH_EINVAL);
}

/* 64-bit numbers, and text that takes any byte but must not be "". */
static void
test_u64_nonempty(void **state)
{
	struct obj o;

	memset(&o, 0, sizeof(o));
	assert_int_equal(witch__set_num(&o, &fields[F_SEED], UINT64_MAX), 0);
	assert_true(o.seed == UINT64_MAX);
	assert_int_equal(witch__set_num(&o, &fields[F_SEED], 0), 0);
	assert_true(o.seed == 0);
	assert_int_equal(witch__set_text(&o, &fields[F_PATH], "a\tb"), 0);
	assert_string_equal(o.path, "a\tb");
	assert_int_equal(witch__set_text(&o, &fields[F_PATH], ""),
	    WITCH_EINVAL);
	assert_string_equal(o.path, "a\tb");
	assert_int_equal(witch__set_text(&o, &fields[F_PATH], NULL), 0);
	assert_string_equal(o.path, "");
}

/* The client's public setters answer bad input as before the table. */
static void
test_client_setters(void **state)
{
	witch_client_config_t *cfg;

	assert_int_equal(witch_client_config_new(&cfg), 0);
	assert_int_equal(witch_client_config_set_host(cfg, "h"), 0);
	assert_int_equal(witch_client_config_set_host(cfg, ""), WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_host(cfg, NULL),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_port(cfg, 0), WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_port(cfg, 65536),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_port(cfg, 65535), 0);
	assert_int_equal(witch_client_config_set_unix_path(cfg, "/x"), 0);
	assert_int_equal(witch_client_config_set_unix_path(cfg, NULL), 0);
	assert_int_equal(witch_client_config_set_unix_path(cfg, ""),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_connect_timeout(cfg, 0),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_request_timeout(cfg,
	    (unsigned)INT32_MAX + 1u), WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_reconnect_delay(cfg, 0),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_max_reconnect_attempts(cfg,
	    0), 0);
	assert_int_equal(witch_client_config_set_jitter_seed(cfg,
	    UINT64_MAX), 0);
	assert_int_equal(witch_client_config_set_max_frame(cfg, 0),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_max_frame(cfg,
	    WITCH_MAX_FRAME_CEILING + 1), WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_auto_reconnect(NULL, true),
	    WITCH_EINVAL);
	assert_int_equal(witch_client_config_set_name(NULL, "n"),
	    WITCH_EINVAL);
	witch_client_config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_u64_nonempty),
		cmocka_unit_test(test_client_setters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
