"""`meetreg serve`: the HTTP side (Starlette under uvicorn)."""
