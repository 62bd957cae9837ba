"""mam_pynn: the multi-area model of macaque visual cortex as a PyNN model.

Data flow: raw data -> anatomy -> connectivity -> Model -> PyNN network -> run ->
spikes -> analysis (see DESIGN.md). ``MultiAreaModel`` is the entry point.
"""
__version__ = "0.1.0"


def __getattr__(name):
    # lazy, so that `import mam_pynn` stays cheap and simulator-free
    if name == "MultiAreaModel":
        from .model import MultiAreaModel
        return MultiAreaModel
    raise AttributeError(name)
