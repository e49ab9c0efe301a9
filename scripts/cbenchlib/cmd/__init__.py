"""One thin module per `cbench` verb (argument parsing, wiring, messages); scripts/cbench imports only the verb it runs."""
