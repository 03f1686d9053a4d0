"""Gap-filling models behind one interface (:class:`~xgenfill.models.base.Filler`)."""
