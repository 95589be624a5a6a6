"""The catalogue of collectives: one module per family, one registry line each."""

from commbench.ops import all_gather, all_reduce, logits_gather, reduce_scatter
from commbench.ops.base import Collective

REGISTRY: dict[str, Collective] = {
    op.COLLECTIVE.name: op.COLLECTIVE
    for op in (all_gather, reduce_scatter, all_reduce, logits_gather)
}
