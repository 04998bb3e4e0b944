"""The Fine-Tuning Workbench engine. Imports no Streamlit; usable from the CLI, tests and the UI."""
