# witchd: the daemon (links only the public API)
