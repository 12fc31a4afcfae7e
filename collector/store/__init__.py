"""Storage behind one small interface (:class:`collector.store.base.Store`), two adapters."""
