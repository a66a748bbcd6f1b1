"""NEXT Biometrics NB-1010-U USB fingerprint sensor (298d:1010): protocol, driver, URL opener."""
