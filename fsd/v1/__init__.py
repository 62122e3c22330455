"""Generated wire types (from proto/ by `python proto/generate.py`; never edit by hand)."""
