"""The shell around ``dsp`` and ``stack``: sample sources, sinks, the ``wmbus`` CLI."""
