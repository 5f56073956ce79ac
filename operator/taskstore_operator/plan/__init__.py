"""The pure planner: one observed state in, one plan of writes out. No I/O, no kopf, no client.

``observed`` holds the value types (imported by the runtime and the API adapter too);
``reconcile`` the top-level :func:`~taskstore_operator.plan.reconcile.plan_reconcile`;
``backend``, ``agents`` and ``status`` its steps.
"""
