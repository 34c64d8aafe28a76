/*
 * tests/fuzz/fuzz_request.c: witch__request_parse() on the whole input,
 * then a reply round trip: what the builders write must parse back to the
 * same id and (for a result) the same JSON.
 */
#include <stdint.h>
#include <stdlib.h>

#include <witch/error.h>

#include "proto/envelope.h"
#include "common.h"

static void
check_id(json_t *reply, const struct witch__request_env *env,
    const json_t *orig_id)
{
	json_t *id = json_object_get(reply, "id");

	if (id == NULL)
		abort();
	if (env->has_id ? !json_equal(id, orig_id) : !json_is_null(id))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct witch__request_env env;
	struct witch__buf out;
	json_t *j, *orig_id = NULL, *parsed = NULL;
	char msg[200];
	int rc, rrc;

	fuzz_seed_once();
	rc = witch__request_parse((const char *)data, size, &env, msg,
	    sizeof(msg));
	if (rc != 0 && rc != WITCH_EPARSE && rc != WITCH_EINVALID_REQUEST &&
	    rc != WITCH_ENOMEM)
		abort();
	if ((rc == 0) != (env.root != NULL))
		abort();
	if (env.has_id) {
		/* Re-read the id independently to compare against. */
		parsed = json_loadb((const char *)data, size,
		    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (parsed == NULL ||
		    (orig_id = json_object_get(parsed, "id")) == NULL)
			abort();
	}
	witch__buf_init(&out, 0);
	if (rc == 0) {
		rrc = witch__reply_result(&out, env.id, env.root, 0);
		if ((j = fuzz_check_frame(&out, 0, rrc)) == NULL)
			abort();
		check_id(j, &env, orig_id);
		if (!json_equal(json_object_get(j, "result"), env.root))
			abort();
		json_decref(j);
		/* The same under a limit it cannot meet. */
		rrc = witch__reply_result(&out, env.id, env.root, 8);
		if (rrc != WITCH_ETOO_LARGE)
			abort();
		(void)fuzz_check_frame(&out, out.len, rrc);
	} else {
		rrc = witch__reply_error(&out, env.id, rc, msg);
		if ((j = fuzz_check_frame(&out, 0, rrc)) == NULL)
			abort();
		check_id(j, &env, orig_id);
		json_decref(j);
	}
	witch__buf_free(&out);
	json_decref(parsed);
	witch__request_env_clear(&env);
	return 0;
}
