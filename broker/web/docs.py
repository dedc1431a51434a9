"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with their assets from the broker itself.

The renderers come from the ``fastapi-offline`` wheel (its ``static/`` folder), not a CDN: a
municipal network without internet still sees the documentation, and one with internet does not
have a child-welfare broker's pages pulling third-party scripts or web fonts. The pages carry no
inline script, so the content security policy allows scripts from the broker only.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from broker.web.errors import NotFound

VENDORED = Path(str(files("fastapi_offline") / "static"))
OWN = Path(__file__).with_name("docs_assets")
ASSETS: dict[str, Path] = {
    "swagger-ui-bundle.js": VENDORED / "swagger-ui-bundle.js",
    "swagger-ui.css": VENDORED / "swagger-ui.css",
    "redoc.standalone.js": VENDORED / "redoc.standalone.js",
    "favicon.png": VENDORED / "favicon.png",
    "swagger-init.js": OWN / "swagger-init.js",
}
# Swagger UI (React style attributes) and ReDoc (styled-components) write styles at run time,
# hence 'unsafe-inline' for styles only; their icons are data: URIs; ReDoc's search index runs
# in a Worker made from a blob. Everything else, scripts above all, comes from the broker.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "worker-src blob:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
# ReDoc's sidebar shows Redocly's logo from their CDN (unconditionally). "data:," is an empty
# image: it fails to load, and ReDoc then leaves the logo out, with no request made.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def redoc_script() -> bytes:
    return ASSETS["redoc.standalone.js"].read_bytes().replace(REDOC_LOGO, b"data:,")


SWAGGER_PAGE = """<!doctype html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>Samsyn – API-dokumentation / API documentation</title>
<link rel="icon" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>Samsyn – API-referens / API reference</title>
<link rel="icon" href="/docs/assets/favicon.png">
</head>
<body>
<redoc spec-url="{openapi_url}" hide-download-button="false"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve the two documentation pages and their assets; the app is made with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN-loading pages are not there."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(SWAGGER_PAGE.format(openapi_url=openapi_url), headers=HEADERS)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC_PAGE.format(openapi_url=openapi_url), headers=HEADERS)

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name == "redoc.standalone.js":
            return Response(redoc_script(), media_type="text/javascript", headers=ASSET_HEADERS)
        path = ASSETS.get(name)
        if path is None:
            raise NotFound(f"no documentation asset {name!r}")
        return FileResponse(path, headers=ASSET_HEADERS)
