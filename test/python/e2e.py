"""Uses a Python client generated from openapi.yaml against a running Fanout.

Run by test/python/generated-client.test.ts with the generated package `fanout_client` on
PYTHONPATH and FANOUT_URL / FANOUT_API_KEY in the environment. Submits a batch of the `rev`
task, waits for it with the generated get_batch, lists it, reads its NDJSON results and its
items, and provokes problem+json errors; prints one JSON object saying what it saw, for the
test to check.
Everything goes through the generated functions and models; nothing here knows a URL path.
"""

import json
import os
import time

from fanout_client import AuthenticatedClient, Client
from fanout_client.api.batches import create_batch, get_batch, list_batches
from fanout_client.api.items import get_batch_item, get_batch_results, list_batch_items
from fanout_client.models import Batch, BatchList, BatchSpec, BatchStatusPhase, Item, ItemList, ListBatchesPhase, Problem
from fanout_client.types import UNSET

URL = os.environ["FANOUT_URL"]
KEY = os.environ["FANOUT_API_KEY"]
FINAL = {BatchStatusPhase.SUCCEEDED, BatchStatusPhase.FAILED, BatchStatusPhase.CANCELLED}

# strict: a status the spec does not document for an operation raises instead of passing quietly
strict = AuthenticatedClient(base_url=URL, token=KEY, raise_on_unexpected_status=True)
# the generator cannot type NDJSON, so the results call's 200 is read as raw content
lenient = AuthenticatedClient(base_url=URL, token=KEY)


def problem(p):
    assert isinstance(p, Problem), f"expected a Problem, got {p!r}"
    errors = [] if p.errors is UNSET else [{"pointer": e.pointer, "detail": e.detail} for e in p.errors]
    return {"type": p.type_, "title": p.title, "status": p.status, "detail": p.detail, "errors": errors}


report = {}

# create, with labels and an idempotency key
spec = BatchSpec.from_dict(
    {"name": "from-python", "labels": {"lang": "python"}, "task": "rev", "items": ["foo", "bar", "baz"], "parallelism": 2}
)
created = create_batch.sync_detailed(client=strict, body=spec, idempotency_key="py-e2e-1")
assert isinstance(created.parsed, Batch), created.content
batch_id = created.parsed.id
report["create"] = {
    "status": int(created.status_code),
    "location": created.headers.get("location"),
    "id": batch_id,
    "name": created.parsed.name,
    "labels": created.parsed.labels.to_dict(),
    "phase": created.parsed.status.phase.value,
}
again = create_batch.sync_detailed(client=strict, body=spec, idempotency_key="py-e2e-1")
report["createAgainId"] = again.parsed.id

# wait with the generated get_batch
deadline = time.monotonic() + 30
while True:
    batch = get_batch.sync(id=batch_id, client=strict)
    assert isinstance(batch, Batch), batch
    if batch.status.phase in FINAL or time.monotonic() > deadline:
        break
    time.sleep(0.1)
report["final"] = {
    "phase": batch.status.phase.value,
    "counts": batch.status.counts.to_dict(),
    "completedIndexes": batch.status.completed_indexes,
    "conditions": [c.type_ for c in batch.status.conditions],
}

# list: the generated listBatches, by label and phase
listed = list_batches.sync(client=strict, label_selector="lang=python", phase=ListBatchesPhase.SUCCEEDED)
assert isinstance(listed, BatchList), listed
report["listed"] = [b.id for b in listed.items]

# results: NDJSON, one line per item in index order
results = get_batch_results.sync_detailed(id=batch_id, client=lenient)
report["results"] = {
    "status": int(results.status_code),
    "contentType": results.headers.get("content-type"),
    "lines": [json.loads(line) for line in results.content.decode().splitlines() if line],
}

# items, two at a time through the cursor, and one by index
items, cursor, pages = [], UNSET, 0
while True:
    page = list_batch_items.sync(id=batch_id, client=strict, limit=2, cursor=cursor)
    assert isinstance(page, ItemList), page
    pages += 1
    items += [
        {"index": i.index, "status": i.status.value, "result": i.result, "attempts": [a.outcome.value for a in i.attempts]}
        for i in page.items
    ]
    if page.next_cursor is None:
        break
    cursor = page.next_cursor
report["items"] = {"pages": pages, "items": items}
one = get_batch_item.sync(id=batch_id, index=1, client=strict)
assert isinstance(one, Item), one
report["item1"] = {"index": one.index, "status": one.status.value, "result": one.result}

# errors: a bad spec, an unknown batch, no credentials, an index out of range
bad = create_batch.sync_detailed(client=strict, body=BatchSpec.from_dict({"task": "rev", "items": ["x"], "parallelism": 0}))
report["badRequest"] = {"httpStatus": int(bad.status_code), "contentType": bad.headers.get("content-type"), **problem(bad.parsed)}
missing = get_batch.sync_detailed(id="b-does-not-exist", client=strict)
report["notFound"] = {"httpStatus": int(missing.status_code), **problem(missing.parsed)}
anonymous = get_batch.sync_detailed(id=batch_id, client=Client(base_url=URL, raise_on_unexpected_status=True))
report["unauthorized"] = {"httpStatus": int(anonymous.status_code), **problem(anonymous.parsed)}
beyond = get_batch_item.sync_detailed(id=batch_id, index=99, client=strict)
report["noSuchItem"] = {"httpStatus": int(beyond.status_code), **problem(beyond.parsed)}

print(json.dumps(report))
