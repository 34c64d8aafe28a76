/*
 * witchd/config.h: witchd's settings, from built-in defaults, the
 * configuration file witchd.conf(5) and the command line.
 *
 * One table (conf_opts[]) drives both sources: every setting is a key in
 * the file and a long option of the same name, so the two cannot drift
 * apart.  Precedence: command line > file > default.  Everything here
 * runs on the main thread.
 */
#ifndef WITCHD_CONFIG_H
#define WITCHD_CONFIG_H

#include <stdbool.h>

#include <witch/witch.h>

#define CONF_DEFAULT_PATH	"/etc/witch/witchd.conf"
#define CONF_DEFAULT_CONTROL	"/run/witch/witchd.sock"
#define CONF_STR_MAX		512

enum conf_id {
	C_PORT, C_BIND, C_NAME, C_PROJECT_ID, C_WORKERS, C_INLINE_BUILTINS,
	C_MAX_CLIENTS,
	C_MAX_FRAME, C_QUEUE_DEPTH, C_IDLE_TIMEOUT, C_HANDSHAKE_TIMEOUT,
	C_OUTPUT_SOFT, C_OUTPUT_HARD, C_DRAIN_TIMEOUT, C_PROTOCOLS, C_TCP,
	C_CONTROL_SOCKET, C_CONTROL_SOCKET_MODE, C_LOG_LEVEL, C_PORT_FILE,
	C_DISCOVERY, C_DISCOVERY_PORT, C_DISCOVERY_INTERVAL, C_ADVERTISE,
	C_FRAME_TIMEOUT, C_PREAUTH_MAX_FRAME, C_DECODE_BUDGET, C_FRAME_BUDGET,
	C_MAX_DEPTH, C_MAX_CLIENTS_PER_ADDRESS,
	C_KEY_FILE, C_PROTECTED_MODE,
	C_PEER, C_PEER_SEED, C_PEER_HEARTBEAT,
	C_COUNT
};

enum conf_type {
	T_INT,		/* decimal integer in [min, max] */
	T_SECS,		/* seconds, fractions allowed; kept in ms; in
			   [min, max] ms when max > 0 */
	T_BYTES,	/* bytes, optional K/M/G suffix (binary) */
	T_STR,		/* text, may be empty */
	T_BOOL,		/* yes/no, true/false, on/off, 1/0 */
	T_SOCKET,	/* unix socket path, or "none" */
	T_MODE,		/* octal permissions, 0 to 0777 */
	T_LEVEL,	/* error, warning, notice, info, debug */
	T_PROTOS,	/* comma-separated protocol names */
	T_SEEDS		/* HOST:PORT, repeatable: the values add up
			 * (comma-separated in str; num: how many) */
};

enum conf_src { SRC_DEFAULT, SRC_FILE, SRC_FLAG };

struct conf_opt {
	const char	*name;		/* file key and --long option */
	int		 shortopt;	/* or 0 */
	enum conf_type	 type;
	long long	 min, max;	/* for T_INT, T_BYTES */
	const char	*def;		/* default, parsed as a value */
	bool		 live;		/* SIGHUP applies it */
	const char	*arg;		/* metavariable for --help */
	const char	*help;
};

extern const struct conf_opt conf_opts[C_COUNT];

struct conf_val {
	enum conf_src	 src;
	int		 line;		/* SRC_FILE: line number */
	char		 flag[32];	/* SRC_FLAG: as typed, "-v", "--no-tcp";
					   "" for --NAME */
	long long	 num;		/* numbers, ms, bools... */
	char		 str[CONF_STR_MAX];	/* as given */
};

struct conf {
	struct conf_val	 v[C_COUNT];
	char		 path[CONF_STR_MAX];	/* of SRC_FILE */
};

/* Reports one error (a full line without newline). */
typedef void (*conf_err_fn)(const char *msg);
/* Format a message and hand it to errfn. */
void	conf_errf(conf_err_fn errfn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fill c with every default (src SRC_DEFAULT). */
void	conf_defaults(struct conf *c);
/*
 * Parse one value s for option id into *v.  Returns 0, or -1 with a reason
 * in err ("expected ...").  v->src and v->line are left alone.
 */
int	conf_parse_value(enum conf_id id, const char *s, struct conf_val *v,
	    char *err, size_t errlen);
/* Option id of a key or long option name, or -1. */
int	conf_lookup(const char *name);
/*
 * Read the file at path into c (which should hold defaults): each key read
 * replaces the value with src SRC_FILE.  Every error (unknown key, bad
 * value, duplicate, syntax) is reported through errfn as "PATH:LINE: ...".
 * Returns the number of errors, or -1 with errno set when the file cannot
 * be opened or is not a regular file (not reported: the caller decides
 * whether a missing file is an error).
 */
int	conf_load_file(struct conf *c, const char *path, conf_err_fn errfn);
/*
 * The same for the len bytes at buf (a whole file's contents, read only),
 * named name in messages: the parser without the file, for the fuzz
 * target.  Returns the number of errors, or -1 with errno set when no
 * stream could be made of buf.
 */
int	conf_load_buffer(struct conf *c, const void *buf, size_t len,
	    const char *name, conf_err_fn errfn);
/*
 * As conf_parse_value(), but a repeatable option (T_SEEDS) adds s to the
 * values already in cur instead of replacing them.
 */
int	conf_add_value(enum conf_id id, struct conf_val *cur, const char *s,
	    char *err, size_t errlen);
/* Take into dst every value of src that src->v[].src marks as SRC_FLAG. */
void	conf_overlay_flags(struct conf *dst, const struct conf *src);
/*
 * Where a value came from, for messages: "PATH:LINE", the option as
 * typed ("--name", "-v", "--no-tcp") or "default".
 */
const char *conf_where(const struct conf *c, enum conf_id id, char *buf,
	    size_t len);
/* The value formatted back as text (a canonical form, for messages). */
const char *conf_format(const struct conf *c, enum conf_id id, char *buf,
	    size_t len);
/* True when option id differs between a and b. */
bool	conf_differs(const struct conf *a, const struct conf *b,
	    enum conf_id id);
/*
 * Build a libwitch configuration from c (the logger is left unset).  Checks
 * what only the library can (addresses, names, soft <= hard) and reports
 * each failure through errfn naming where the value came from.  Returns 0
 * and stores the new object in *ret (caller frees), or the number of
 * errors.
 */
int	conf_to_server(const struct conf *c, witch_server_config_t **ret,
	    conf_err_fn errfn);
/* The bad option of the last conf_to_server() failure (for exit codes). */
extern int conf_last_bad;

#endif /* WITCHD_CONFIG_H */
