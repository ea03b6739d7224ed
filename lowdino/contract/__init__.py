"""What the library promises the programs that follow a run: leaf modules that import nothing heavy.

`metrics`  the names of the metrics a run records and which way each is better
"""
