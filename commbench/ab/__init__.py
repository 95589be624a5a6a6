"""`commbench ab`: A/B experiments. The arms, one launch of a sweep under an arm, the
order of launches, and the loop that launches, pairs and looks until every interval
decides. Its statistics are pure and live in analysis/ab.py."""
