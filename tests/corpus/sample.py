# The quick brown fox jumps over the lazy dog.
Café naïve — “quotes” & <angle>
# This sentence belongs to the sample.py sample
