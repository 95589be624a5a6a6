"""One module per command: thin functions that parse, validate and call what they
import lazily, so a command that only reads results never imports torch."""
