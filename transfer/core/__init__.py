"""params schema, errors, artifact I/O (atomic outputs), package locations and model loading."""
