"""py_server: a witch.Server with a Python "pyecho" endpoint, for
python/bench/run.sh.  Usage: py_server.py PORT WORKERS; runs until
SIGTERM or SIGINT."""

import signal
import sys

import witch


def pyecho(data, client_id):
    return {"echo": data}


def main():
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    srv = witch.Server(port=port, workers=workers, daemon=True)
    srv.register_endpoint("pyecho", pyecho)
    srv.start()
    print(srv.port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    srv.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
