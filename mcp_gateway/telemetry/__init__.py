"""What happened: the access log (one JSON line per request); OpenInference traces and metrics follow."""
