"""Schemathesis hooks for the Fanout fuzz test (loaded through SCHEMATHESIS_HOOKS=hooks).

POST /v1/batches also takes application/x-ndjson (a spec line, then one item per line), which
schemathesis cannot serialize on its own: a generated string is sent as it is, anything else as
one JSON line.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return (json.dumps(value) + "\n").encode("utf-8")
