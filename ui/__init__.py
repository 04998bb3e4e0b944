"""Page helpers for the Streamlit workbench: shared state, charts, error guard. The engine lives in core/."""
