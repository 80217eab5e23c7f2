"""Radio front end: 2-FSK modulation and demodulation for wM-Bus modes S, T and C.

Pure signal processing (numpy, scipy, numba); no I/O.  Imports only ``dsp`` and
``stack.frame`` (the on-air length rule).
"""
