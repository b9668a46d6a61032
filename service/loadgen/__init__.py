"""``rectifier bench``: a load generator. A client of the service, not part of it: it is
kept out of the serving image (``.dockerignore``), and ``rectifier`` skips the command where
it is absent."""
