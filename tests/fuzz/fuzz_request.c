/*
 * tests/fuzz/fuzz_request.c: witch__request_parse() on the whole input,
 * then a reply round trip: what the builders write must parse back to the
 * same id and (for a result) the same JSON.  Also the fast path: the
 * scanner must accept exactly what jansson accepts less raw NUL bytes
 * (framing.md, "Strict JSON"), and
 * witch__request_scan() must agree with witch__request_parse() on every
 * field.
 */
#include <stdint.h>
#include <stdlib.h>

#include <witch/error.h>

#include <string.h>

#include "proto/envelope.h"
#include "proto/scan.h"
#include "common.h"

/* The scanner and the fast envelope agree with jansson and the DOM path. */
static void
check_scan(const uint8_t *data, size_t size)
{
	struct witch__request_env a, b;
	enum witch__jtype top;
	json_error_t jerr;
	json_t *j, *da;
	bool kesc, nul = false;
	int v, ra, rb;

	v = witch__json_scan((const char *)data, size, &top, NULL, 0, &kesc);
	j = json_loadb((const char *)data, size,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL && json_error_code(&jerr) == json_error_out_of_memory)
		return;
	/*
	 * The rule (framing.md, "Strict JSON"): valid JSON is what jansson
	 * accepts and holds no raw NUL byte.  jansson alone takes a raw NUL
	 * right after a number or literal as the end of input ("123\0"
	 * parses); both of our paths refuse it.  With the rule applied to
	 * jansson's verdict, the scanner must agree with it on every input.
	 */
	if (j != NULL && memchr(data, 0, size) != NULL) {
		json_decref(j);
		j = NULL;
		nul = true;
	}
	if ((v == 0) != (j != NULL))
		abort();
	if (v == WITCH_EINVALID_REQUEST && (nul ||
	    json_error_code(&jerr) != json_error_null_byte_in_key))
		abort();
	json_decref(j);

	rb = witch__request_parse((const char *)data, size, &b, NULL, 0);
	ra = witch__request_scan((const char *)data, size, &a, NULL, 0);
	if (ra != rb || strcmp(a.id, b.id) != 0 || a.has_id != b.has_id ||
	    a.oneway != b.oneway)
		abort();
	if (ra == 0) {
		if (strcmp(a.endpoint, b.endpoint) != 0 ||
		    a.has_deadline != b.has_deadline ||
		    a.deadline_ms != b.deadline_ms)
			abort();
		da = witch__request_env_data(&a);
		if ((da == NULL) != (b.data == NULL) ||
		    (da != NULL && !json_equal(da, b.data)))
			abort();
	}
	witch__request_env_clear(&a);
	witch__request_env_clear(&b);
}

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
	check_scan(data, size);
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
