"""Graph passes, in the order compile.py runs them."""
