"""Studies: groups of runs over correlations, learning rates and seeds; the paper's claims; their figures."""
