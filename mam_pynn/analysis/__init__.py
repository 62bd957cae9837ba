"""Analysis of a run directory: spike loading (SONATA -> columnar arrays, Neo for
samples), statistics (rates, CV, LvR, synchrony, correlations, spectra, FC) and
figures. ``analyze_run(run_dir)`` does it all; ``mam analyze RUN_DIR`` calls it.
"""
from .upstream_api import Analysis
from .run import DEFAULT_PARAMS, analyze_run, compute_statistics, load_results
from .spikes import (PopulationSpikes, RunDirError, RunInfo, SpikeFile, iter_areas,
                     load_population, read_run_info, recorded_only, sample_neurons, spike_trains)

__all__ = ['Analysis', 'DEFAULT_PARAMS', 'analyze_run', 'compute_statistics', 'load_results',
           'PopulationSpikes', 'RunDirError', 'RunInfo', 'SpikeFile', 'iter_areas',
           'load_population', 'read_run_info', 'recorded_only', 'sample_neurons', 'spike_trains']
