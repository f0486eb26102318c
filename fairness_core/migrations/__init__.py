"""The store's schema versions (Alembic), run by :func:`fairness_core.store.open_store`."""
