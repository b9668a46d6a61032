"""How the service is run: ``rectifier serve`` (its flags derived from the settings), the
uvicorn server with its graceful shutdown, ``--workers`` processes and Ray Serve replicas.
Each wraps the same app from ``service.app.factory``."""
