"""The HTTP API (FastAPI): the seed's endpoints, health, and the OpenAPI docs."""
