"""Standard biometric formats: WSQ images, ISO/IEC 19794-2 templates."""
