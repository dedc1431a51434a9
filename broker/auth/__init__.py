"""OAuth2 client credentials, signed access tokens and the scope checks on every route."""
