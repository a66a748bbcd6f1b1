"""Back-office hand-off in the field's formats: ANSI/NIST-ITL 1-2011 and ISO/IEC 19794-4/-5 files.

``document`` reads a decrypted packet document into typed parts; ``ansi_nist`` writes one
traditional-encoding transaction per packet and ``ansi_nist_reader`` reads one back strictly;
``iso19794`` writes finger and face image records; ``batch`` runs ``central export`` (resumable,
with a manifest). The field maps and the clauses they follow are in ``docs/formats.md``.
"""
