"""Coverage-guided fuzzing of the project's parsers (atheris): targets, corpus and replay."""
