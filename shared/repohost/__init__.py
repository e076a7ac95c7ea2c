"""repohost: a Kallithea-compatible repository hosting API for AWS Lambda.

The package is laid out by concern:

- ``config``      settings read once from the environment
- ``db``          SQLAlchemy models, engine/session handling, migrations, queries
- ``auth``        API keys, IP whitelists and permission computation
- ``rpc``         the JSON-RPC envelope, method registry and dispatcher
- ``methods``     one module per area of the API; each method a typed function
- ``http``        API Gateway (payload 2.0) events in and out
- ``local``       the local server behind ``make run``
"""

__version__ = "0.1.0"
