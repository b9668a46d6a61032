"""The plumbing every layer uses: settings, the error shape, logging and metrics."""
