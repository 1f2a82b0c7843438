"""The staff console: server-rendered pages over the services' HTTP APIs, signed in through OpenID Connect."""
