"""The local runner behind ``make run``: API Gateway's job, done in-process without Docker.

:mod:`repohost.local.template` reads the routes of ``template.yaml``;
:mod:`repohost.local.server` serves them over HTTP by calling the Lambda handlers with
API Gateway HTTP API (payload 2.0) events; ``python -m repohost.local`` prepares a local
database and serves.
"""

from repohost.local.server import LocalServer
from repohost.local.template import Route, TemplateError, match_route, routes_from_template

__all__ = ["LocalServer", "Route", "TemplateError", "match_route", "routes_from_template"]
