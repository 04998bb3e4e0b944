"""Fine-Tuning Workbench: placeholder until the pages land."""

import streamlit as st

st.set_page_config(page_title="Fine-Tuning Workbench", page_icon="🛠️", layout="wide")
st.title("Fine-Tuning Workbench")
st.write("The engine is in place; the pages are being built.")
