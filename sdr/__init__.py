"""The shell around ``dsp`` and ``stack``: sample sources and sinks, the ``wmbus`` CLI."""
