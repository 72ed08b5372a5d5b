"""aiohttp fakes of the services eventpipe sends to (one module per service)."""
