"""The operator's runtime: kopf wiring, the reconcile queue, and the reconciler."""
