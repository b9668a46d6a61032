"""The app and its state: the factory and lifespan, the typed ``ServiceState`` and its
dependencies, API keys, the model repository and hot reload, the probes and the page."""
