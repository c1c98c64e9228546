"""Milvus Lite's server with the search paths of lite_engine.py in place.

    python -m server.retrieval.lite_child server --data-dir DIR --host 127.0.0.1 --port PORT

takes what `python -m milvus_lite` takes; lite.py starts it as the embedded vector store.
"""

from __future__ import annotations

import logging

from milvus_lite.cmdline import main

from server.retrieval.lite_engine import install

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    install()
    raise SystemExit(main())
