"""wM-Bus protocol stack (EN 13757-3/-4/-7, OMS).

Bytes in, checked and decrypted records out.  Pure Python on the standard library and
``cryptography``; it imports nothing else of ours and does no I/O, so it can decode
telegrams from any receiver.
"""
