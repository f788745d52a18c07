"""The .autonomous_runs/ views: derived from the DB, written atomically, regenerable."""
