/*
 * witchctl/witchctl.h: what the command files of witchctl share.
 *
 * main.c parses the global options into a struct ctl, picks the command
 * and runs it; every command returns one of the CTL_EXIT_* statuses.
 * witchctl is single-threaded: all of this runs on the main thread.
 */
#ifndef WITCHCTL_H
#define WITCHCTL_H

#include <stdbool.h>

#include <witch/witch.h>

/* Exit statuses (witchctl(1), EXIT STATUS). */
#define CTL_EXIT_OK	0	/* success */
#define CTL_EXIT_REMOTE	1	/* the server answered with an error */
#define CTL_EXIT_USAGE	2	/* bad command line */
#define CTL_EXIT_CONN	3	/* connection failure or timeout */

/* Global options, and the server they name. */
struct ctl {
	const char	*host;		/* -H, default 127.0.0.1 */
	unsigned	 port;		/* -p, default 8888 */
	const char	*unix_path;	/* -U, NULL for TCP */
	unsigned	 timeout_ms;	/* --timeout, connect and request */
	bool		 timeout_set;	/* --timeout was given */
	bool		 json;		/* --json */
	char		 where[320];	/* "host:port" or the unix path */
};

struct ctl_cmd;
typedef int (*ctl_run_fn)(struct ctl *ctl, const struct ctl_cmd *cmd,
    int argc, char *argv[]);

/* One command: its name, its help and the function that runs it. */
struct ctl_cmd {
	const char	*name;
	const char	*synopsis;	/* arguments after the name */
	const char	*summary;	/* one line for the global --help */
	const char	*options;	/* option lines for COMMAND --help */
	const char	*help;		/* what it prints, for COMMAND --help */
	ctl_run_fn	 run;		/* argv[0] is the command name */
};

/*
 * The commands (cmd_ping.c, cmd_call.c, cmd_ops.c, cmd_discover.c,
 * cmd_peer.c).
 */
extern const struct ctl_cmd ctl_cmd_ping;
extern const struct ctl_cmd ctl_cmd_echo;
extern const struct ctl_cmd ctl_cmd_call;
extern const struct ctl_cmd ctl_cmd_info;
extern const struct ctl_cmd ctl_cmd_status;
extern const struct ctl_cmd ctl_cmd_peers;
extern const struct ctl_cmd ctl_cmd_clients;
extern const struct ctl_cmd ctl_cmd_kill_client;
extern const struct ctl_cmd ctl_cmd_stats;
extern const struct ctl_cmd ctl_cmd_monitor;
extern const struct ctl_cmd ctl_cmd_discover;
extern const struct ctl_cmd ctl_cmd_peer_broadcast;
extern const struct ctl_cmd ctl_cmd_peer_send;
extern const struct ctl_cmd ctl_cmd_peer_query;
extern const struct ctl_cmd ctl_cmd_events;

/* Print "witchctl: " and the formatted message to stderr. */
void	ctl_warnx(const char *fmt, ...)
	    __attribute__((__format__(__printf__, 1, 2)));

/* Print the usage and help of cmd to stdout (COMMAND --help). */
void	ctl_cmd_help(const struct ctl_cmd *cmd);

/* Report a usage error (one line on stderr); return CTL_EXIT_USAGE. */
int	ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
	    __attribute__((__format__(__printf__, 2, 3)));

/*
 * Report the option error getopt_long() returned ch ('?' or ':') for, in
 * the global options (cmd NULL) or those of cmd; return CTL_EXIT_USAGE.
 */
int	ctl_bad_option(const struct ctl_cmd *cmd, int ch, char *argv[]);

/*
 * Parse the options of a command that has none but -j/--json (the global
 * --json again) and -h/--help, and check
 * it has between min and max operands.  Returns -1 to go on (operands
 * start at argv[optind]), or the status the command must exit with.
 */
int	ctl_plain_args(const struct ctl_cmd *cmd, int argc, char *argv[],
	    int min, int max);

/* Parse seconds (fractions allowed) in [min, max] into *ms; 0 or -1. */
int	ctl_parse_secs(const char *s, double min, double max, unsigned *ms);

/*
 * Create a client for the server of ctl and connect it.  A non-zero
 * reconnect_max_ms turns automatic reconnection on (for ping), forever,
 * with at most that delay between attempts (at least 100 ms).  Returns
 * CTL_EXIT_OK and the client in *ret, or reports the failure and returns
 * CTL_EXIT_CONN.
 */
int	ctl_connect(struct ctl *ctl, unsigned reconnect_max_ms,
	    witch_client_t **ret);
/* ctl_connect() without reconnection, with fn(ud) as event callback. */
int	ctl_connect_events(struct ctl *ctl, witch_client_event_fn fn,
	    void *ud, witch_client_t **ret);

/*
 * Report the failure rc (err filled by libwitch) of a request to endpoint
 * on stderr and return the exit status it maps to.
 */
int	ctl_request_failed(const struct ctl *ctl, const char *endpoint,
	    int rc, const witch_error_t *err);

/*
 * One request: connect, call endpoint with data (borrowed, may be NULL),
 * disconnect.  Returns CTL_EXIT_OK with a new reference in *result, or an
 * exit status after reporting the error.
 */
int	ctl_request(struct ctl *ctl, const char *endpoint, json_t *data,
	    json_t **result);

/*
 * ctl_request(), then print the result: compact JSON with --json, else
 * through human.  data is borrowed.  Returns the exit status.
 */
int	ctl_show(struct ctl *ctl, const char *endpoint, json_t *data,
	    void (*human)(const json_t *));

/*
 * The self-pipe of the long-running commands (sigpipe.c): catch SIGINT
 * (and SIGTERM when also_term); poll the returned descriptor; ask
 * ctl_signalled() after each wakeup; release before returning.
 */
int	ctl_signals_catch(bool also_term);
bool	ctl_signalled(void);
void	ctl_signals_release(void);

#endif /* WITCHCTL_H */
