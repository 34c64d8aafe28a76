# witchctl: the command-line client (links only the public API)
