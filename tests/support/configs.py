"""Config texts the tests share."""

# A [model] table (a preset's), valid on its own.
MODEL = """
[model]
name = "m"
source = "s"
hidden = 64
vocab = 1000
dtype = "bfloat16"
splits = [{ tp = 8, dp = 4 }]
"""
