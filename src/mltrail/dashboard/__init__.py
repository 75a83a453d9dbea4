"""What the Streamlit dashboard in app/ shows, computed here so pages share it.

``views`` (pandas only) and ``charts`` (Altair) know nothing of Streamlit and are
tested directly; ``state`` holds the Streamlit-side caching keyed on the compaction
generation, so a page rerun reads Parquet only when the store changed.
"""
