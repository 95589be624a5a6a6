"""For people: terminal tables, markdown, plots. No torch."""
