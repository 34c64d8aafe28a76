/*
 * witchd/config.c: the option table and the witchd.conf(5) parser; the
 * mapping onto libwitch's configuration object is in apply.c.
 *
 * The file format is deliberately the one administrators already know from
 * sshd_config(5), sysctl.conf(5) and systemd's environment files: one
 * "key = value" per line, '#' comments, no sections, no nesting.  Every
 * line stands alone, so every error names exactly one line.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <witch/witch.h>

#include "../common/secs.h"
#include "config.h"

#define SECS_MAX	604800		/* one week */
#define LINE_MAX_LEN	4096

#define XSTR(x)	STR(x)
#define STR(x)	#x

const struct conf_opt conf_opts[C_COUNT] = {
	[C_PORT] = { "port", 'p', T_INT, 0, 65535, XSTR(WITCH_DEFAULT_PORT),
	    false, "N", "TCP port (0 picks a free one)" },
	[C_BIND] = { "bind", 'b', T_STR, 0, 0, WITCH_DEFAULT_BIND, false,
	    "ADDR", "numeric address to listen on" },
	[C_NAME] = { "name", 'n', T_STR, 0, 0, "witch", false, "NAME",
	    "server name shown by info and hello" },
	[C_PROJECT_ID] = { "project-id", 0, T_STR, 0, 0, "", false, "ID",
	    "project identifier (empty: none)" },
	[C_WORKERS] = { "workers", 'w', T_INT, 0, 1024, "0", false, "N",
	    "worker threads (0: CPUs - 1, at least 1)" },
	[C_INLINE_BUILTINS] = { "inline-builtins", 0, T_BOOL, 0, 0, "yes",
	    false, "yes|no", "answer ping and echo on the reactor thread "
	    "(no: on workers)" },
	[C_MAX_CLIENTS] = { "max-clients", 'm', T_INT, 1, 1000000,
	    XSTR(WITCH_DEFAULT_MAX_CLIENTS), true, "N",
	    "connections served at once" },
	[C_MAX_FRAME] = { "max-frame", 0, T_BYTES, 1, WITCH_MAX_FRAME_CEILING,
	    "1048576", false, "BYTES", "largest request frame" },
	[C_QUEUE_DEPTH] = { "queue-depth", 0, T_INT, 1, 1000000,
	    XSTR(WITCH_DEFAULT_QUEUE_DEPTH), false, "N",
	    "requests waiting for a worker" },
	[C_IDLE_TIMEOUT] = { "idle-timeout", 0, T_SECS, 0, 0, "0", true, "S",
	    "close clients silent this long (0: never)" },
	[C_HANDSHAKE_TIMEOUT] = { "handshake-timeout", 0, T_SECS, 0, 0, "10",
	    true, "S", "close clients with no complete frame by then" },
	[C_OUTPUT_SOFT] = { "output-soft", 0, T_BYTES, 1, LLONG_MAX,
	    "1048576", true, "BYTES", "stop reading a client with this much "
	    "unsent output" },
	[C_OUTPUT_HARD] = { "output-hard", 0, T_BYTES, 4096, LLONG_MAX,
	    "16777216", true, "BYTES", "drop a client with this much" },
	[C_DRAIN_TIMEOUT] = { "drain-timeout", 0, T_SECS, 0, 0, "5", false,
	    "S", "on SIGTERM, let requests finish this long" },
	[C_PROTOCOLS] = { "protocols", 0, T_PROTOS, 0, 0, "v1", false, "LIST",
	    "comma-separated protocols, preferred first" },
	[C_TCP] = { "tcp", 0, T_BOOL, 0, 0, "yes", false, "yes|no",
	    "listen on TCP at bind:port" },
	[C_CONTROL_SOCKET] = { "control-socket", 'U', T_SOCKET, 0, 0,
	    CONF_DEFAULT_CONTROL, false, "PATH|none",
	    "local control socket" },
	[C_CONTROL_SOCKET_MODE] = { "control-socket-mode", 0, T_MODE, 0, 0,
	    "0660", false, "MODE", "permissions of the control socket" },
	[C_LOG_LEVEL] = { "log-level", 0, T_LEVEL, 0, 0, "info", true,
	    "LEVEL", "error, warning, notice, info or debug" },
	[C_PORT_FILE] = { "port-file", 0, T_STR, 0, 0, "", false, "FILE",
	    "write the bound TCP port to FILE once listening" },
	[C_DISCOVERY] = { "discovery", 0, T_BOOL, 0, 0, "yes", false,
	    "yes|no", "announce the server on the LANs (UDP)" },
	[C_DISCOVERY_PORT] = { "discovery-port", 0, T_INT, 1, 65535,
	    XSTR(WITCH_DISCOVERY_DEFAULT_PORT), false, "N",
	    "UDP port of the announcements" },
	[C_DISCOVERY_INTERVAL] = { "discovery-interval", 0, T_SECS, 100,
	    3600000, "2", false, "S", "seconds between announcements" },
	[C_ADVERTISE] = { "advertise", 0, T_STR, 0, 0, "", false, "ADDR",
	    "numeric address to announce (NAT; empty: none)" },
	/* Memory budgets: witchd.conf(5), "MEMORY BUDGETS". */
	[C_FRAME_TIMEOUT] = { "frame-timeout", 0, T_SECS, 0, 0, "30", true,
	    "S", "close clients whose started frame is not complete by then "
	    "(0: never)" },
	[C_PREAUTH_MAX_FRAME] = { "preauth-max-frame", 0, T_BYTES, 0,
	    WITCH_MAX_FRAME_CEILING, "16384", false, "BYTES",
	    "largest frame before authentication (no key: before the first "
	    "frame; 0: max-frame)" },
	[C_DECODE_BUDGET] = { "decode-budget", 0, T_BYTES, 0, LLONG_MAX,
	    "67108864", false, "BYTES", "estimated JSON tree bytes of a "
	    "client's requests in flight (0: none)" },
	[C_FRAME_BUDGET] = { "frame-budget", 0, T_BYTES, 0, LLONG_MAX,
	    "134217728", false, "BYTES", "bytes held in incomplete frames, "
	    "all clients (0: none)" },
	[C_MAX_DEPTH] = { "max-depth", 0, T_INT, 0, WITCH_MAX_DEPTH_CEILING,
	    XSTR(WITCH_DEFAULT_MAX_DEPTH), false, "N",
	    "deepest JSON nesting of a request (0: 2048)" },
	[C_MAX_CLIENTS_PER_ADDRESS] = { "max-clients-per-address", 0, T_INT,
	    0, 1000000, XSTR(WITCH_DEFAULT_MAX_CLIENTS_PER_ADDRESS), false,
	    "N", "connections from one remote address (0: no limit)" },
	[C_KEY_FILE] = { "key-file", 0, T_STR, 0, 0, "", false, "FILE",
	    "the project's secret key: clients authenticate" },
	[C_PROTECTED_MODE] = { "protected-mode", 0, T_BOOL, 0, 0, "yes",
	    false, "yes|no", "no key: serve loopback and unix only" },
	[C_PEER] = { "peer", 0, T_BOOL, 0, 0, "no", false, "yes|no",
	    "link to the servers of the project (peers)" },
	[C_PEER_SEED] = { "peer-seed", 0, T_SEEDS, 0, 0, "", false,
	    "HOST:PORT", "a peer to contact (repeatable; up to 16)" },
	[C_PEER_HEARTBEAT] = { "peer-heartbeat", 0, T_SECS,
	    WITCH_PEER_HEARTBEAT_MIN_MS, WITCH_PEER_HEARTBEAT_MAX_MS, "1",
	    false, "S", "seconds between heartbeats to each peer" },
};

static const char *levels[] = { "", "", "", "error", "warning", "notice",
    "info", "debug" };

int conf_last_bad = -1;

int
conf_lookup(const char *name)
{
	int i;

	for (i = 0; i < C_COUNT; i++)
		if (strcmp(conf_opts[i].name, name) == 0)
			return i;
	return -1;
}

static int
parse_int(const struct conf_opt *o, const char *s, struct conf_val *v,
    char *err, size_t errlen)
{
	const char *errstr;

	v->num = strtonum(s, o->min, o->max, &errstr);
	if (errstr != NULL) {
		snprintf(err, errlen, "value is %s (allowed %lld to %lld)",
		    errstr, o->min, o->max);
		return -1;
	}
	return 0;
}

/*
 * Seconds with an optional fraction ("0.25"), to milliseconds; within
 * [o->min, o->max] ms when o->max is set.
 */
static int
parse_secs(const struct conf_opt *o, const char *s, struct conf_val *v,
    char *err, size_t errlen)
{
	double d;

	if (secs_parse(s, &d) != 0 || d > SECS_MAX)
		goto bad;
	v->num = (long long)(d * 1000 + 0.5);
	if (o->max > 0 && (v->num < o->min || v->num > o->max))
		goto bad;
	return 0;
bad:
	if (o->max > 0)
		snprintf(err, errlen, "expected seconds from %g to %g",
		    o->min / 1000.0, o->max / 1000.0);
	else
		snprintf(err, errlen, "expected seconds from 0 to %d",
		    SECS_MAX);
	return -1;
}

/* Bytes, with an optional binary suffix K, M or G. */
static int
parse_bytes(const struct conf_opt *o, const char *s, struct conf_val *v,
    char *err, size_t errlen)
{
	unsigned long long n, mul = 1;
	size_t digits;
	char *end;

	digits = strspn(s, "0123456789");
	if (digits == 0)
		goto bad;
	switch (s[digits]) {
	case '\0':
		break;
	case 'k': case 'K':
		mul = 1ULL << 10;
		break;
	case 'm': case 'M':
		mul = 1ULL << 20;
		break;
	case 'g': case 'G':
		mul = 1ULL << 30;
		break;
	default:
		goto bad;
	}
	if (s[digits] != '\0' && s[digits + 1] != '\0')
		goto bad;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || n > (unsigned long long)LLONG_MAX / mul)
		goto range;
	n *= mul;
	if (n < (unsigned long long)o->min || n > (unsigned long long)o->max)
		goto range;
	v->num = (long long)n;
	return 0;
bad:
	snprintf(err, errlen, "expected a number of bytes, optionally "
	    "followed by K, M or G");
	return -1;
range:
	snprintf(err, errlen, "value out of range (allowed %lld to %lld "
	    "bytes)", o->min, o->max);
	return -1;
}

static int
parse_bool(const char *s, struct conf_val *v, char *err, size_t errlen)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
		v->num = 1;
	else if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
		v->num = 0;
	else {
		snprintf(err, errlen, "expected yes or no");
		return -1;
	}
	return 0;
}

static int
parse_mode(const char *s, struct conf_val *v, char *err, size_t errlen)
{
	size_t len = strlen(s);
	long m;

	if (len == 0 || len > 4 || strspn(s, "01234567") != len ||
	    (m = strtol(s, NULL, 8)) > 0777) {
		snprintf(err, errlen, "expected octal permissions from 0 to "
		    "0777");
		return -1;
	}
	v->num = m;
	return 0;
}

static int
parse_level(const char *s, struct conf_val *v, char *err, size_t errlen)
{
	int i;

	for (i = WITCH_LOG_ERR; i <= WITCH_LOG_DEBUG; i++)
		if (strcmp(s, levels[i]) == 0) {
			v->num = i;
			return 0;
		}
	snprintf(err, errlen, "expected error, warning, notice, info or "
	    "debug");
	return -1;
}

static int
parse_protos(const char *s, struct conf_val *v, char *err, size_t errlen)
{
	const char *p = s;
	size_t len;
	int n = 0;

	for (;;) {
		len = strcspn(p, ",");
		if (len == 0 || len > 15 || ++n > 16) {
			snprintf(err, errlen, "expected 1 to 16 "
			    "comma-separated names of 1 to 15 bytes");
			return -1;
		}
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	v->num = n;
	return 0;
}

/*
 * Peer seeds: HOST:PORT (or [v6]:PORT), comma-separated; the library
 * checks each in full (witch_server_config_add_peer_seed()).
 */
static int
parse_seeds(const char *s, struct conf_val *v, char *err, size_t errlen)
{
	const char *p = s, *e, *colon;
	long long n = 0;
	size_t len;

	while (*p != '\0') {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		colon = memrchr(p, ':', len);
		if (len == 0 || colon == NULL || colon == p ||
		    colon + 1 == p + len || p + len - colon - 1 > 5 ||
		    strspn(colon + 1, "0123456789") != (size_t)(p + len -
		    colon - 1) || strtol(colon + 1, NULL, 10) < 1 ||
		    strtol(colon + 1, NULL, 10) > 65535) {
			snprintf(err, errlen, "expected HOST:PORT (port 1 to "
			    "65535)");
			return -1;
		}
		if (++n > WITCH_PEER_SEEDS_MAX) {
			snprintf(err, errlen, "at most %d seeds",
			    WITCH_PEER_SEEDS_MAX);
			return -1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	v->num = n;
	return 0;
}

int
conf_parse_value(enum conf_id id, const char *s, struct conf_val *v,
    char *err, size_t errlen)
{
	const struct conf_opt *o = &conf_opts[id];

	if (strlcpy(v->str, s, sizeof(v->str)) >= sizeof(v->str)) {
		snprintf(err, errlen, "value too long (at most %d bytes)",
		    CONF_STR_MAX - 1);
		return -1;
	}
	v->num = 0;
	switch (o->type) {
	case T_INT:
		return parse_int(o, s, v, err, errlen);
	case T_SECS:
		return parse_secs(o, s, v, err, errlen);
	case T_BYTES:
		return parse_bytes(o, s, v, err, errlen);
	case T_STR:
		return 0;
	case T_BOOL:
		return parse_bool(s, v, err, errlen);
	case T_SOCKET:
		if (strcmp(s, "none") == 0)
			return 0;
		if (*s == '\0' || strlen(s) > 107) {
			snprintf(err, errlen, "expected a path of 1 to 107 "
			    "bytes, or none");
			return -1;
		}
		v->num = 1;
		return 0;
	case T_MODE:
		return parse_mode(s, v, err, errlen);
	case T_LEVEL:
		return parse_level(s, v, err, errlen);
	case T_PROTOS:
		return parse_protos(s, v, err, errlen);
	case T_SEEDS:
		return parse_seeds(s, v, err, errlen);
	}
	return -1;
}

int
conf_add_value(enum conf_id id, struct conf_val *cur, const char *s,
    char *err, size_t errlen)
{
	struct conf_val v;
	char joined[CONF_STR_MAX + 1];

	if (conf_opts[id].type != T_SEEDS || cur->str[0] == '\0')
		return conf_parse_value(id, s, cur, err, errlen);
	if ((size_t)snprintf(joined, sizeof(joined), "%s,%s", cur->str, s) >=
	    sizeof(joined)) {
		snprintf(err, errlen, "too many seeds (at most %d bytes in "
		    "all)", CONF_STR_MAX - 1);
		return -1;
	}
	if (conf_parse_value(id, joined, &v, err, errlen) != 0)
		return -1;
	v.src = cur->src;
	v.line = cur->line;
	*cur = v;
	return 0;
}

void
conf_defaults(struct conf *c)
{
	char err[256];
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < C_COUNT; i++) {
		/* The table's defaults are valid by construction. */
		if (conf_parse_value(i, conf_opts[i].def, &c->v[i], err,
		    sizeof(err)) != 0)
			abort();
		c->v[i].src = SRC_DEFAULT;
	}
}

void
conf_errf(conf_err_fn errfn, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errfn(msg);
}

/*
 * Take the value that starts at p: either "quoted" (with \" and \\) or
 * bare up to a '#' that follows white space, trimmed.  Returns 0 or -1
 * with a reason.
 */
static int
take_value(char *p, char *out, size_t outlen, const char **why)
{
	size_t n = 0;
	char *q;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0') {
				*why = "missing closing quote";
				return -1;
			}
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			if (n + 1 >= outlen) {
				*why = "value too long";
				return -1;
			}
			out[n++] = *p;
		}
		out[n] = '\0';
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		if (*p != '\0' && *p != '#') {
			*why = "unexpected text after the closing quote";
			return -1;
		}
		return 0;
	}
	for (q = p; *q != '\0'; q++)
		if (*q == '#' && (q == p || q[-1] == ' ' || q[-1] == '\t')) {
			*q = '\0';
			break;
		}
	while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
		*--q = '\0';
	if (strlcpy(out, p, outlen) >= outlen) {
		*why = "value too long";
		return -1;
	}
	return 0;
}

/* Parse one line (already without its newline).  Returns errors (0/1). */
static int
parse_line(struct conf *c, const char *path, int lineno, char *line,
    int *seen, conf_err_fn errfn)
{
	char key[64], value[CONF_STR_MAX + 1], why[256];
	struct conf_val v;
	const char *what;
	size_t klen;
	char *p = line;
	int id;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	klen = strspn(p, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
	if (klen == 0 || klen >= sizeof(key)) {
		conf_errf(errfn, "%s:%d: expected 'key = value'", path, lineno);
		return 1;
	}
	memcpy(key, p, klen);
	key[klen] = '\0';
	for (p += klen; *p == ' ' || *p == '\t'; p++)
		;
	if (*p != '=') {
		conf_errf(errfn, "%s:%d: expected '=' after '%s'", path, lineno,
		    key);
		return 1;
	}
	for (p++; *p == ' ' || *p == '\t'; p++)
		;
	if ((id = conf_lookup(key)) == -1) {
		conf_errf(errfn, "%s:%d: unknown key '%s'", path, lineno, key);
		return 1;
	}
	if (take_value(p, value, sizeof(value), &what) != 0) {
		conf_errf(errfn, "%s:%d: %s: %s", path, lineno, key, what);
		return 1;
	}
	if (seen[id] != 0 && conf_opts[id].type == T_SEEDS) {
		/* Repeatable: this line adds to the earlier ones. */
		if (conf_add_value(id, &c->v[id], value, why,
		    sizeof(why)) != 0) {
			conf_errf(errfn, "%s:%d: %s = %s: %s", path, lineno, key,
			    value, why);
			return 1;
		}
		return 0;
	}
	if (seen[id] != 0) {
		conf_errf(errfn, "%s:%d: %s: already set on line %d", path, lineno,
		    key, seen[id]);
		return 1;
	}
	seen[id] = lineno;
	if (conf_parse_value(id, value, &v, why, sizeof(why)) != 0) {
		conf_errf(errfn, "%s:%d: %s = %s: %s", path, lineno, key, value,
		    why);
		return 1;
	}
	v.src = SRC_FILE;
	v.line = lineno;
	c->v[id] = v;
	return 0;
}

/*
 * Read the lines of f, named path in messages, into c; see
 * conf_load_buffer() in config.h.  Does not close f.
 */
static int
load_stream(struct conf *c, FILE *f, const char *path, conf_err_fn errfn)
{
	int seen[C_COUNT] = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, errors = 0;

	strlcpy(c->path, path, sizeof(c->path));
	while ((len = getline(&line, &cap, f)) != -1) {
		if (++lineno > 100000) {
			conf_errf(errfn, "%s:%d: file too long", path, lineno);
			errors++;
			break;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if ((size_t)len != strlen(line)) {
			conf_errf(errfn, "%s:%d: NUL byte in line", path, lineno);
			errors++;
		} else if (len > LINE_MAX_LEN) {
			conf_errf(errfn, "%s:%d: line longer than %d bytes", path,
			    lineno, LINE_MAX_LEN);
			errors++;
		} else
			errors += parse_line(c, path, lineno, line, seen,
			    errfn);
	}
	if (ferror(f)) {
		conf_errf(errfn, "%s: read error: %s", path, strerror(errno));
		errors++;
	}
	free(line);
	return errors;
}

int
conf_load_file(struct conf *c, const char *path, conf_err_fn errfn)
{
	struct stat st;
	int errors, saved;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fstat(fileno(f), &st) == -1)
		st.st_mode = 0;
	if (!S_ISREG(st.st_mode)) {
		saved = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		fclose(f);
		errno = saved;
		return -1;
	}
	errors = load_stream(c, f, path, errfn);
	fclose(f);
	return errors;
}

int
conf_load_buffer(struct conf *c, const void *buf, size_t len,
    const char *name, conf_err_fn errfn)
{
	int errors;
	FILE *f;

	if (len == 0)
		return 0;
	if ((f = fmemopen((void *)(uintptr_t)buf, len, "r")) == NULL)
		return -1;
	errors = load_stream(c, f, name, errfn);
	fclose(f);
	return errors;
}

void
conf_overlay_flags(struct conf *dst, const struct conf *src)
{
	int i;

	for (i = 0; i < C_COUNT; i++)
		if (src->v[i].src == SRC_FLAG)
			dst->v[i] = src->v[i];
}

const char *
conf_where(const struct conf *c, enum conf_id id, char *buf, size_t len)
{
	switch (c->v[id].src) {
	case SRC_FILE:
		snprintf(buf, len, "%s:%d", c->path, c->v[id].line);
		break;
	case SRC_FLAG:
		if (c->v[id].flag[0] != '\0')
			snprintf(buf, len, "%s", c->v[id].flag);
		else
			snprintf(buf, len, "--%s", conf_opts[id].name);
		break;
	default:
		snprintf(buf, len, "default");
		break;
	}
	return buf;
}

const char *
conf_format(const struct conf *c, enum conf_id id, char *buf, size_t len)
{
	const struct conf_val *v = &c->v[id];

	switch (conf_opts[id].type) {
	case T_INT:
	case T_BYTES:
		snprintf(buf, len, "%lld", v->num);
		break;
	case T_SECS:
		snprintf(buf, len, "%g", v->num / 1000.0);
		break;
	case T_BOOL:
		snprintf(buf, len, "%s", v->num ? "yes" : "no");
		break;
	case T_SOCKET:
		snprintf(buf, len, "%s", v->num ? v->str : "none");
		break;
	case T_MODE:
		snprintf(buf, len, "%04llo", (unsigned long long)v->num);
		break;
	case T_LEVEL:
		snprintf(buf, len, "%s", levels[v->num]);
		break;
	default:
		snprintf(buf, len, "\"%s\"", v->str);
		break;
	}
	return buf;
}

bool
conf_differs(const struct conf *a, const struct conf *b, enum conf_id id)
{
	switch (conf_opts[id].type) {
	case T_STR:
	case T_PROTOS:
	case T_SEEDS:
		return strcmp(a->v[id].str, b->v[id].str) != 0;
	case T_SOCKET:
		return a->v[id].num != b->v[id].num || (a->v[id].num &&
		    strcmp(a->v[id].str, b->v[id].str) != 0);
	default:
		return a->v[id].num != b->v[id].num;
	}
}
