"""Schemathesis hooks for .ci/fuzz (loaded through SCHEMATHESIS_HOOKS).

One check is narrowed, not dropped: "a resource just created is found"
holds for a creation, not for a replay. The fuzzer draws Idempotency-Key
values from the spec's pattern, and it draws the same short ones again:
a create sent with a key and body it had used before is answered with the
first creation's response, byte for byte, marked `Idempotent-Replayed:
true` (as the spec says, and as Stripe does). If that first listing has
since been deleted, the replayed id is rightly 404. Every answer that is
not a replay is still held to the built-in check.
"""

import schemathesis
from schemathesis.specs.openapi.checks import ensure_resource_availability


def _replayed(response) -> bool:
    return response is not None and response.headers.get("idempotent-replayed") == ["true"]


@schemathesis.check
def ensure_created_resource_availability(ctx, response, case):
    """ensure_resource_availability, except after a replayed creation."""
    parent = ctx.internals.find_parent(case_id=case.id)
    if parent is not None and _replayed(ctx.internals.find_response(case_id=parent.id)):
        return None
    return ensure_resource_availability(ctx, response, case)
