"""Who drives runs: inline (the CLI process) or the server's thread pool."""
