"""Pure enrichers: cost, token rates, SLO outcomes, error reasons and the cardinality guard.

Nothing here does I/O, logs or touches metrics; each step is a function or a small class whose
``__init__`` decides everything once and whose per-call method is arithmetic and look-ups.
"""
