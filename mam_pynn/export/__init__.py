"""Exports of the model in the formats other tools read, and the way back.

- :func:`mam_pynn.export.sonata.export_sonata` (SONATA circuit + configs, chunked edges),
  :func:`~mam_pynn.export.sonata.load_sonata`, :func:`~mam_pynn.export.sonata.simulate_sonata`
  (``mam simulate --sonata DIR``);
- :func:`mam_pynn.export.neuroml.export_neuroml` (NeuroML 2 + LEMS).

Imported lazily (``from mam_pynn.export.sonata import export_sonata``): h5py, libNeuroML
and pyNeuroML are only needed when exporting.
"""
