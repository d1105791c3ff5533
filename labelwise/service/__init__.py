"""The service: project store, import/export, label queue, API and UI.

Everything with state or HTTP lives here. It depends on the library
(``labelwise``), never the other way round.
"""
