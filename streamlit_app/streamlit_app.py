"""The dashboard server: Streamlit (router.py) behind Orbin's sign-in gate.

Run it with ``streamlit run streamlit_app/streamlit_app.py`` (``orbin up`` does): Streamlit
finds the ``app`` below and serves it with uvicorn, sign-in routes and gate included.
"""

from pathlib import Path

if __name__ == "streamlit_app":
    # `streamlit run` puts this folder first on sys.path and imports this file as the
    # top-level module `streamlit_app`, shadowing the package of the same name. Giving the
    # module the package's path keeps `streamlit_app.<module>` imports working.
    __path__ = [str(Path(__file__).parent)]

import importlib  # noqa: E402
import threading  # noqa: E402

import streamlit as st  # noqa: E402

from streamlit_app.server import middleware, routes  # noqa: E402

app = st.App(Path(__file__).with_name("router.py"), routes=routes(), middleware=middleware())

# The model's SDK (openai) takes about a second to import: load it while the server starts,
# not on somebody's first visit to the editor or a run.
threading.Thread(
    target=importlib.import_module, args=("streamlit_app.services.ai",), daemon=True
).start()
