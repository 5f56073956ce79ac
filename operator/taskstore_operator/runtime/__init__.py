"""The operator's runtime: the reconcile queue, what it remembers, the reconciler.

No kopf here: :mod:`taskstore_operator.kopf_wiring` feeds watch events into it.
"""
