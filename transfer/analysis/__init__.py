"""Reading results: the headline gain, strategy comparisons, label-budget maths, domain-shift metrics
and the run report."""
