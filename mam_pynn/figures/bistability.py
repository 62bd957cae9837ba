"""Figures 2, 3 and 9 of Schuecker, Schmidt et al. 2017 (PLoS Comput Biol 13:e1005179): the
bistability that the stabilization (Figs. 4-8, :mod:`.meanfield`) removes.

- Fig. 2: the two-population excitatory example of upstream's ``Fig2_EE_network.py``
  (K = 420, W = 10 pA, drive 150-170 spikes/s): transfer functions, fixed points against the
  drive, the flux, the phase plane with its separatrix, and the network stabilized by a change
  of the in-degree that keeps the unstable fixed point where it was.
- Fig. 3: the multi-area model of the paper (raw K, g = -16, rate_ext 10) in its low- and
  high-activity state (mean-field theory; upstream's panels are spiking simulations), and the
  two branches of fixed points along the drive of 5E/6E with their stability.
- Fig. 9: spiking simulations at upstream's Fig. 9 parameters with K' and with the raw K, beside
  the mean-field rates (reads two analysed runs the workflow makes; see ``fig9_configs``).
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from . import PAPERS
from .common import plt, save

PAPER = PAPERS['meanfield']
#: upstream's colours (plotcolors.py): excitatory / raised drive, and inhibitory / stabilized
BLUE, RED = (0., 64 / 255, 192 / 255), (192 / 255, 64 / 255, 0.)

# ============================================================== Fig. 2: the E-E example
#: upstream's Fig2_EE_network: in-degree (recurrent in all, and external) and PSC amplitude (pA)
EE_K, EE_W = 420., 10.
#: base drive (spikes/s) of panels C (top), D, F, G, its increase, the drives of panel C (bottom)
EE_RATE_EXT, EE_DRIVE_STEP, EE_DRIVES = 160., 1., (150., 160., 170.)
#: the drives of panel E (upstream: 150 to 169 in steps of 1)
EE_SCAN = np.arange(150., 170.001, 0.25)
#: distance (spikes/s) from the separatrix of the trajectories drawn in panel D
EE_TRAJECTORY_OFFSET = 1.5


class EENetwork:
    """``n`` excitatory populations (1 or 2) of the model's LIF neuron; each neuron has
    ``K_rec`` recurrent inputs spread evenly over the n populations and ``K`` external Poisson
    inputs at ``rate_ext``, all of weight ``W`` (upstream's network1D / network2D).
    ``K_rec`` other than ``K``: the stabilized network. ``t_ref``, ``noise``: variants of
    panel C (no refractory period; sigma = 0)."""

    def __init__(self, rate_ext, n=1, K=EE_K, W=EE_W, K_rec=None, t_ref=None, noise=True):
        from ..connectivity import psc_to_psp_factor
        from ..params import network_defaults
        from ..theory import LIFParams
        neuron_params = network_defaults()['neuron_params']
        self.neuron = LIFParams.from_neuron_params(neuron_params)
        if t_ref is not None:
            self.neuron = dataclasses.replace(self.neuron, t_ref=float(t_ref))
        self.J = W * psc_to_psp_factor(neuron_params['single_neuron_dict'])
        self.tau_s = self.neuron.tau_m * 1e-3
        self.n, self.K, self.rate_ext, self.noise = n, float(K), float(rate_ext), noise
        self.K_rec = float(K if K_rec is None else K_rec)

    def inputs(self, rates):
        """mu, sigma (mV) of every population's input at ``rates`` (n, ...) spikes/s."""
        rates = np.asarray(rates, float)
        drive = self.K_rec / self.n * rates.sum(axis=0) + self.K * self.rate_ext
        mu = self.tau_s * self.J * drive
        sigma = np.sqrt(self.tau_s * self.J ** 2 * drive) if self.noise else np.zeros_like(mu)
        return np.broadcast_to(mu, rates.shape), np.broadcast_to(sigma, rates.shape)

    def phi(self, rates):
        """Siegert rates (spikes/s) the input at ``rates`` (n, ...) drives."""
        from ..theory import siegert_rate
        return siegert_rate(*self.inputs(rates), self.neuron)

    def diagonal(self, x):
        """Phi on the diagonal (all populations at rate x): (len(x),)."""
        x = np.atleast_1d(np.asarray(x, float))
        return self.phi(np.broadcast_to(x, (self.n, x.size)))[0]

    def jacobian(self, rates):
        """d Phi_i / d nu_j (n, n) at ``rates`` (n,): the effective connectivity."""
        from ..theory.core import effective_connectivity
        from ..theory.siegert import siegert_derivatives
        S, T = siegert_derivatives(*self.inputs(rates), self.neuron)
        return effective_connectivity(S, T, np.full((self.n, self.n), self.K_rec / self.n),
                                      self.J, self.tau_s)


def ee_fixed_points(net: EENetwork, top: float = 200.) -> list[dict]:
    """Every fixed point of ``net`` (all on the diagonal: each population receives the same
    input), found by bracketing Phi(x) - x on a grid fine near 0 and refining with brentq;
    stable when every eigenvalue of the Jacobian has real part < 1."""
    from scipy.optimize import brentq
    x = np.unique(np.concatenate([[0.], np.geomspace(1e-8, 1., 400), np.linspace(1., top, 4000)]))
    g = net.diagonal(x) - x
    out = []
    for k in np.flatnonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0):
        r = brentq(lambda v: net.diagonal(v)[0] - v, x[k], x[k + 1], xtol=1e-14, rtol=1e-13)
        ev = np.linalg.eigvals(net.jacobian(np.full(net.n, r)))
        out.append({'rate': r, 'leading_eigenvalue': float(ev.real.max()),
                    'stable': bool(ev.real.max() < 1.), 'mean_input': float(net.inputs(np.full(net.n, r))[0][0]),
                    'threshold': net.neuron.theta})
    return out


def ee_unstable_rate(net: EENetwork) -> float:
    """Rate of the network's unstable fixed point (the one the separatrix passes through)."""
    unstable = [fp['rate'] for fp in ee_fixed_points(net) if not fp['stable']]
    if len(unstable) != 1:
        raise ValueError(f"the E-E network at rate_ext {net.rate_ext} has {len(unstable)} "
                         "unstable fixed points, not one: it is not bistable")
    return unstable[0]


def ee_stabilized_K(K=EE_K, rate_ext=EE_RATE_EXT, step=EE_DRIVE_STEP) -> float:
    """Recurrent in-degree K' that keeps the unstable fixed point nu* of the drive
    ``rate_ext`` in place when the drive rises by ``step``: K' nu* + K (rate_ext + step) =
    K nu* + K rate_ext, i.e. K' = K (1 - step / nu*) (upstream's Fig. 2, Eq. 13 in 1D)."""
    return K * (1. - step / ee_unstable_rate(EENetwork(rate_ext, K=K)))


def ee_separatrix(net: EENetwork) -> dict:
    """The stable manifold of the 2-population network's saddle: the line through it along the
    Jacobian's eigenvector of smallest eigenvalue, cut at the axes (it is exactly this line:
    both populations receive the same input, so r1 - r2 just decays)."""
    s = ee_unstable_rate(net)
    ev, vec = np.linalg.eig(net.jacobian(np.full(2, s)))
    v = np.real(vec[:, np.argmin(ev.real)])
    # t such that the line (s, s) + t v meets the axes
    t = sorted(-s / c for c in v if abs(c) > 1e-12)
    ends = [np.full(2, s) + tk * v for tk in (t[0], t[-1])]
    return {'saddle': [s, s], 'direction': v, 'ends': ends,
            'eigenvalues': np.sort(ev.real)}


def ee_trajectories(net: EENetwork, starts, t_ms: float = 60., dt: float = 0.2) -> np.ndarray:
    """Rate trajectories (B, 2, steps + 1) from ``starts`` (B, 2): tau dnu/dt = -nu + Phi(nu)
    by the theory's exponential Euler step (tau = 1 ms), all runs in one batch."""
    from ..theory.core import euler_factors
    p1, p2 = euler_factors(dt)
    r = np.asarray(starts, float).T.copy()
    out = [r]
    for _ in range(int(round(t_ms / dt))):
        r = p1 * r + p2 * net.phi(r)
        out.append(r)
    return np.moveaxis(np.array(out), 0, -1).transpose(1, 0, 2)


def ee_vector_field(net: EENetwork, axis) -> dict:
    """Flux Phi(r) - r (spikes/s) of both populations on the grid ``axis`` x ``axis``."""
    r1, r2 = np.meshgrid(axis, axis, indexing='ij')     # r1: population 1 (y), r2: (x)
    rates = np.stack([r1.ravel(), r2.ravel()])
    flux = net.phi(rates) - rates
    return {'rate_1': r1, 'rate_2': r2, 'flux_1': flux[0].reshape(r1.shape),
            'flux_2': flux[1].reshape(r1.shape)}


def ee_nullcline(net: EENetwork, rate_1) -> np.ndarray:
    """Rate of population 2 where population 1's flux vanishes, for each ``rate_1``:
    Phi depends on r1 + r2 only, so solve Phi(s) = r1 for the sum s (NaN where Phi never
    reaches r1)."""
    from scipy.optimize import brentq
    out = np.full(len(rate_1), np.nan)
    phi_sum = lambda s: net.diagonal(s / 2.)[0]  # noqa: E731 (Phi at r1 + r2 = s)
    lo, hi = 0., 1e4
    for k, r in enumerate(rate_1):
        if phi_sum(lo) < r < phi_sum(hi):
            out[k] = brentq(lambda s: phi_sum(s) - r, lo, hi, xtol=1e-12) - r
    return out


def ee_data() -> dict:
    """Every number of Fig. 2."""
    x = np.arange(0., 150., 0.25)
    base = EENetwork(EE_RATE_EXT)
    transfer = {'rate': x, 'phi': base.diagonal(x),
                'phi_no_refractory': EENetwork(EE_RATE_EXT, t_ref=0.).diagonal(x),
                # upstream's noise-free curve: sigma = 0, also without refractory period
                'phi_noise_free': EENetwork(EE_RATE_EXT, t_ref=0., noise=False).diagonal(x),
                'rate_long': np.arange(0., 1e5, 500.)}
    transfer['phi_long'] = base.diagonal(transfer['rate_long'])
    drives = {f'{d:g}': {'phi': EENetwork(d).diagonal(x), 'fixed_points': ee_fixed_points(EENetwork(d))}
              for d in EE_DRIVES}
    scan = [{'rate_ext': d, 'fixed_points': ee_fixed_points(EENetwork(d))} for d in EE_SCAN]
    K_stab = ee_stabilized_K()
    nets = {'base': dict(rate_ext=EE_RATE_EXT),
            'increased': dict(rate_ext=EE_RATE_EXT + EE_DRIVE_STEP),
            'stabilized': dict(rate_ext=EE_RATE_EXT + EE_DRIVE_STEP, K_rec=K_stab)}
    flux, phase = {}, {}
    for name, kw in nets.items():
        one, two = EENetwork(n=1, **kw), EENetwork(n=2, **kw)
        flux[name] = {'flux': one.diagonal(x) - x, 'unstable_rate': ee_unstable_rate(one)}
        phase[name] = {'fixed_points': ee_fixed_points(two), 'separatrix': ee_separatrix(two),
                       'field': ee_vector_field(two, np.arange(0., 51., 10.)),
                       'field_zoom': ee_vector_field(two, np.linspace(0.001, 0.015, 4))}
    base2 = EENetwork(EE_RATE_EXT, n=2)
    sep = phase['base']['separatrix']
    a, b = (np.asarray(e) for e in sep['ends'])
    across = np.ones(2) / np.sqrt(2)       # the unstable direction
    starts = [a + f * (b - a) + side * EE_TRAJECTORY_OFFSET * across
              for f in (0.15, 0.85) for side in (-1, 1)]
    phase['base']['trajectories'] = ee_trajectories(base2, starts)
    nullcline_axis = np.arange(0., 50., 0.1)
    return {'network': {'K': EE_K, 'W_pA': EE_W, 'J_mV': base.J, 'neuron': dataclasses.asdict(base.neuron),
                        'rate_ext': EE_RATE_EXT, 'drive_step': EE_DRIVE_STEP, 'K_stabilized': K_stab},
            'transfer': transfer, 'drives': drives, 'scan': scan, 'flux': flux, 'phase': phase,
            'nullcline': {'rate_1': nullcline_axis, 'rate_2': ee_nullcline(base2, nullcline_axis)}}


#: colours of the base, increased and stabilized networks (upstream's black, blue, red)
EE_COLORS = {'base': 'k', 'increased': BLUE, 'stabilized': RED}
EE_LABELS = {'base': f'ν_ext = {EE_RATE_EXT:g}', 'increased': f'ν_ext = {EE_RATE_EXT + EE_DRIVE_STEP:g}',
             'stabilized': f"ν_ext = {EE_RATE_EXT + EE_DRIVE_STEP:g}, stabilized K'"}
FP_MARKERS = {'low': 'D', 'unstable': 'o', 'high': 'P'}


def _fp_kind(fp: dict) -> str:
    """'unstable', or a stable fixed point's kind: 'low' where the mean input stays below
    threshold (fluctuation-driven), 'high' where it is above (mean-driven)."""
    if not fp['stable']:
        return 'unstable'
    return 'low' if fp['mean_input'] < fp['threshold'] else 'high'


def fig2_ee_example(out_dir) -> list:
    d = ee_data()
    pyplot = plt()
    fig = pyplot.figure(figsize=(10, 12), constrained_layout=True)
    grid = fig.add_gridspec(4, 2)
    ax = {'C': fig.add_subplot(grid[0, 0]), 'C2': fig.add_subplot(grid[1, 0]),
          'E': fig.add_subplot(grid[2, 0]), 'F': fig.add_subplot(grid[3, 0]),
          'D': fig.add_subplot(grid[0:2, 1]), 'G': fig.add_subplot(grid[2:4, 1])}
    net, tr = d['network'], d['transfer']
    x = tr['rate']

    a = ax['C']
    a.plot(x, tr['phi'], color='0.3', label='Φ(ν) (Siegert, τ_ref = 2 ms)')
    a.plot(x, tr['phi_no_refractory'], color=EE_COLORS['stabilized'], label='τ_ref = 0')
    a.plot(x, tr['phi_noise_free'], color=EE_COLORS['increased'], label='noise-free (σ = 0, τ_ref = 0)')
    a.plot(x, x, '--', color='k', lw=0.8, label='Φ(ν) = ν')
    a.set(xlim=(-3, 70), ylim=(-3, 70), xlabel='rate ν (spikes/s)', ylabel='rate Φ(ν) (spikes/s)',
          title=f"C  transfer function, ν_ext = {net['rate_ext']:g} spikes/s")
    a.legend(loc='upper left', fontsize=7)
    inset = a.inset_axes([0.66, 0.2, 0.32, 0.3])
    inset.plot(tr['rate_long'], tr['phi_long'], color='0.3')
    inset.axhline(1e3 / net['neuron']['t_ref'], ls=':', color='k', lw=0.8)
    inset.set_title('ν up to 10⁵ spikes/s; dotted: 1/τ_ref', fontsize=6, pad=2)
    inset.set_ylabel('Φ (spikes/s)', fontsize=6, labelpad=1)
    inset.tick_params(labelsize=6)
    inset.set_xticks([0., 1e5], ['0', '10⁵'])

    a = ax['C2']
    greys = {'150': '0.7', '160': '0.35', '170': 'k'}
    for drive, entry in d['drives'].items():
        a.plot(x, entry['phi'], color=greys.get(drive, 'k'), label=f'ν_ext = {drive}')
        for fp in entry['fixed_points']:
            kind = _fp_kind(fp)
            a.plot(fp['rate'], fp['rate'], FP_MARKERS[kind], color='k', ms=5,
                   mfc='w' if kind == 'unstable' else 'k')
    a.plot(x, x, '--', color='k', lw=0.8)
    a.set(xlim=(-3, 70), ylim=(-3, 70), xlabel='rate ν (spikes/s)', ylabel='rate Φ(ν) (spikes/s)',
          title='C (bottom)  three drives; ◆ low, ○ unstable, ✚ high fixed point')
    a.legend(loc='upper left', fontsize=7)

    a = ax['E']
    for entry in d['scan']:
        for fp in entry['fixed_points']:
            kind = _fp_kind(fp)
            a.plot(entry['rate_ext'], fp['rate'], FP_MARKERS[kind], color='k', ms=3,
                   mfc='w' if kind == 'unstable' else 'k')
    for name in ('base', 'increased'):
        a.axvline(net['rate_ext'] + (name == 'increased') * net['drive_step'], color=EE_COLORS[name],
                  lw=0.8, ls=':')
    a.set(xlim=(EE_SCAN[0], EE_SCAN[-1]), xlabel='external drive ν_ext (spikes/s)',
          ylabel='fixed-point rate ν (spikes/s)',
          title='E  fixed points against the drive (◆ low, ○ unstable, ✚ high)')

    a = ax['F']
    zoom = a.inset_axes([0.55, 0.08, 0.4, 0.3])
    for k, (name, entry) in enumerate(d['flux'].items()):
        a.plot(x, entry['flux'], color=EE_COLORS[name], label=EE_LABELS[name])
        zoom.plot(x, entry['flux'], color=EE_COLORS[name], lw=3 if name == 'increased' else 1)
        a.barh(6.2 - 1.1 * k, entry['unstable_rate'], height=0.7, color=EE_COLORS[name])
    a.axhline(0., ls='--', color='k', lw=0.8)
    zoom.axhline(0., ls='--', color='k', lw=0.8)
    zoom.set(xlim=(0., 0.03), ylim=(-0.02, 0.02))
    zoom.tick_params(labelsize=6)
    zoom.set_title('near the low fixed point', fontsize=6, pad=2)
    a.set(xlim=(0., 50.), ylim=(-10., 7.), xlabel='rate ν (spikes/s)',
          ylabel='flux τν̇ = Φ(ν) − ν (spikes/s)',
          title=f"F  flux; bars: distance of the unstable fixed point (K' = {net['K_stabilized']:.1f})")
    a.legend(loc='lower left', fontsize=7)

    a = ax['D']
    base = d['phase']['base']
    f = base['field']
    a.quiver(f['rate_2'], f['rate_1'], f['flux_2'], f['flux_1'], angles='xy', scale_units='xy',
             scale=8, color='0.4', width=0.004)
    nc = d['nullcline']
    a.plot(nc['rate_2'], nc['rate_1'], '--', color='k', lw=0.8, label='nullclines')
    a.plot(nc['rate_1'], nc['rate_2'], '--', color='k', lw=0.8)
    for name, entry in d['phase'].items():
        sep = np.array(entry['separatrix']['ends'])
        a.plot(sep[:, 1], sep[:, 0], color=EE_COLORS[name], lw=5 if name == 'base' else 1.5,
               alpha=0.6 if name == 'base' else 1., label=f'separatrix, {EE_LABELS[name]}')
        for fp in entry['fixed_points']:
            kind = _fp_kind(fp)
            a.plot(fp['rate'], fp['rate'], FP_MARKERS[kind], color=EE_COLORS[name], ms=6,
                   mfc='w' if kind == 'unstable' else EE_COLORS[name])
    for k, tr in enumerate(base['trajectories']):
        a.plot(tr[1], tr[0], color='C2', lw=1.2, label='trajectories' if k == 0 else None)
        a.plot(tr[1, 0], tr[0, 0], 'o', color='C2', ms=3)
    a.set(xlim=(-2, 50), ylim=(-2, 50), xlabel='rate of population 2 (spikes/s)',
          ylabel='rate of population 1 (spikes/s)', aspect='equal',
          title='D  phase plane: flux, nullclines, fixed points, separatrices,\ntrajectories (ν_ext = 160) started beside the separatrix (•)')
    a.legend(loc='upper left', fontsize=7)

    a = ax['G']
    scale = 1e2     # plotted in units of 10^-2 spikes/s, as upstream
    for name in ('base', 'stabilized'):
        f = d['phase'][name]['field_zoom']
        a.quiver(f['rate_2'] * scale, f['rate_1'] * scale, f['flux_2'] * scale, f['flux_1'] * scale,
                 angles='xy', scale_units='xy', scale=10, color=EE_COLORS[name], width=0.005,
                 label=f'flux, {EE_LABELS[name]}')
    for name, entry in d['phase'].items():
        low = min(entry['fixed_points'], key=lambda fp: fp['rate'])
        a.plot(low['rate'] * scale, low['rate'] * scale, FP_MARKERS['low'], color=EE_COLORS[name],
               ms=9 if name == 'increased' else 5, label=f'low fixed point, {EE_LABELS[name]}')
    a.set(xlim=(0, 1.5), ylim=(0, 1.5), aspect='equal',
          xlabel='rate of population 2 (10⁻² spikes/s)', ylabel='rate of population 1 (10⁻² spikes/s)',
          title='G  near the low fixed point')
    a.legend(loc='upper left', fontsize=7)
    fig.suptitle(f"{PAPER}, Fig. 2\ntwo excitatory populations (K = {net['K']:g}, "
                 f"W = {net['W_pA']:g} pA, J = {net['J_mV']:g} mV); sketches A, B not drawn",
                 fontsize=9)
    return save(fig, d, out_dir, 'fig2_ee_example')


# ============================================================== the MAM: rate matrices
#: colour range of the rate matrices (spikes/s), upstream's
RATE_RANGE = (1e-2, 500.)
#: rates below this count as zero in the histograms (upstream: exactly 0, drawn at 1e-5)
ZERO_RATE = 1e-4
#: upstream's colours (plotcolors.py): blue, light blue, white, light red, red
RATE_COLORS = [BLUE, (0., 128 / 255, 192 / 255), 'white', (245 / 255, 157 / 255, 115 / 255), RED]
#: upstream's theory_params of Figs. 3 and 9 (pseudo-time step and duration, ms)
THEORY_SPEC = {'dt': 0.01, 'T': 30.}


def theory_grid(M, rates) -> np.ndarray:
    """(areas, 8 populations) matrix of a population vector of model ``M``, NaN where an
    area lacks the population (TH: layer 4)."""
    from ..params import POPULATION_LIST
    from ..structure import grid_index, vector_to_grid
    grid = np.full(len(M.area_list) * len(POPULATION_LIST), np.nan)
    grid[grid_index(M.area_list, M.structure)] = 0.
    return grid.reshape(len(M.area_list), -1) + vector_to_grid(rates, M.area_list, M.structure)


def architectural_types(areas) -> list[int]:
    """Architectural type of each area (the x axis of upstream's rate matrices)."""
    from ..anatomy import load_raw_data, process_raw_data
    arch = process_raw_data(load_raw_data())['architecture_completed']
    return [int(arch[a]) for a in areas]


def rate_matrix(fig, ax, grid, areas, types, title):
    """Upstream's rate matrix: populations (rows) x areas (ordered by architectural type),
    log colours; grey below 0.01 spikes/s (silent included), black where the population
    does not exist."""
    from matplotlib.colors import LinearSegmentedColormap, LogNorm
    from ..params import POPULATION_LIST
    cmap = LinearSegmentedColormap.from_list('schuecker', RATE_COLORS, N=256).with_extremes(
        under='0.3', bad='k')
    grid = np.asarray(grid, float)
    shown = np.where(grid > 0, grid, RATE_RANGE[0] / 10)   # silent: grey as upstream, not 'bad'
    im = ax.imshow(np.ma.masked_invalid(np.where(np.isnan(grid), np.nan, shown).T), aspect='auto',
                   cmap=cmap, norm=LogNorm(*RATE_RANGE), interpolation='nearest')
    ax.set_yticks(range(len(POPULATION_LIST)), [p[:-1].replace('23', '2/3') + p[-1]
                                                for p in POPULATION_LIST])
    ax.set_xticks(range(len(areas)), areas, rotation=90, fontsize=6)
    ax.set_xlabel(f'area (grey: below {RATE_RANGE[0]:g} spikes/s; black: no such population)',
                  fontsize=8)
    top = ax.secondary_xaxis('top')
    types = np.asarray(types)
    starts = np.flatnonzero(np.r_[True, types[1:] != types[:-1]])
    ends = np.r_[starts[1:], len(types)]
    top.set_xticks((starts + ends - 1) / 2., [str(t) for t in types[starts]], fontsize=7)
    top.set_xlabel('architectural type', fontsize=7, labelpad=1)
    for s in starts[1:]:
        ax.axvline(s - 0.5, color='0.5', lw=0.5)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, extend='min', label='rate (spikes/s)')


def rate_histograms(fig, spec, grid, title, t_ref_ms):
    """Counts of excitatory (top) and inhibitory (bottom) population rates on log bins
    (upstream's 0.15 decades), with rates below ZERO_RATE in a bar of their own."""
    from ..params import POPULATION_LIST
    grid = np.asarray(grid, float)
    sub = spec.subgridspec(2, 1, hspace=0.08)
    edges = 10. ** np.arange(np.log10(ZERO_RATE), 3.0001, 0.15)
    zero_at = ZERO_RATE / 10 ** 0.6          # where the zero bar is drawn
    axes = []
    for k, (kind, color) in enumerate((('E', BLUE), ('I', RED))):
        ax = fig.add_subplot(sub[k])
        cols = [j for j, p in enumerate(POPULATION_LIST) if p.endswith(kind)]
        values = grid[:, cols].ravel()
        values = values[np.isfinite(values)]
        counts, _ = np.histogram(values, bins=edges)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align='edge', color=color)
        n_zero = int(np.sum(values < ZERO_RATE))
        ax.bar(zero_at, n_zero, width=zero_at * 0.5, color=color)
        ax.axvline(ZERO_RATE / 10 ** 0.25, color='k', lw=0.6, ls=(0, (2, 2)))
        ax.axvline(1e3 / t_ref_ms, color='k', lw=0.6, ls=':')
        ax.set_xscale('log')
        ax.set_xlim(zero_at / 2, 1.5e3)
        ax.set_ylabel(f'{kind} populations', fontsize=8)
        ticks = [zero_at, 1e-3, 1e-1, 1e1, 1e3]
        ax.set_xticks(ticks, ['0'] + ['10⁻³', '10⁻¹', '10¹', '10³'] if k else [''] * 5)
        ax.minorticks_off()
        axes.append(ax)
    axes[0].text(1e3 / t_ref_ms, axes[0].get_ylim()[1], '1/τ_ref', ha='center', va='bottom',
                 fontsize=7)
    axes[0].set_title(title, fontsize=9)
    axes[1].set_xlabel(f'population rate (spikes/s); 0: below {ZERO_RATE:g}')
    return axes


# ============================================================== Fig. 3: bistability of the MAM
#: upstream's Fig3_bistability: the paper's network (raw K, g = -16, ...) at rate_ext 10
FIG3_INPUT = {'input_params': {'rate_ext': 10.}}
#: drive factor of 5E (6E: ``factor_6E``) of the low- and high-activity states, panels C and D
FIG3_STATES = {'low': 1., 'high': 1.125}
#: drive factors along which the branches of panels G, H are followed
FIG3_SCAN = np.round(np.arange(0.9, 1.3001, 0.02), 4)
#: halvings of the last step that locate where a branch ends
BRANCH_REFINEMENTS = 5


def paper_params(**connection_params) -> dict:
    """network_params of the paper's network (upstream's Figs. 3 and 9: raw K, g = -16, V1
    in-degree 3950, TH drive 1.2, chi = 1) at rate_ext 10, updated with ``connection_params``."""
    from ..params import nested_update
    from ..theory.stabilization import SCHUECKER2017_NETWORK
    params = nested_update(copy.deepcopy(SCHUECKER2017_NETWORK), FIG3_INPUT)
    params['connection_params'].update(connection_params)
    return params


def paper_network(f5=1.):
    """The paper's network with the drive factor f5 of 5E and factor_6E(f5) of 6E."""
    from ..model import MultiAreaModel
    from ..theory.stabilization import factor_6E
    return MultiAreaModel(paper_params(fac_nu_ext_5E=float(f5), fac_nu_ext_6E=float(factor_6E(f5))))


class DriveScan:
    """The fixed-point equation Phi(nu) = nu of model ``M`` (built at f5 = 1) with the
    external drive of 5E and 6E scaled by f and factor_6E(f): the external part of the input's
    mean and variance (Theory.mu_sigma with minus without external input) scales with the
    external in-degree, which is what fac_nu_ext_5E/6E scale."""

    def __init__(self, M):
        from ..theory import Theory
        from ..theory.stabilization import factor_6E
        self.theory = Theory(M, THEORY_SPEC)
        n = len(M.structure_vec)
        zeros = np.zeros(n)
        mu_all, sigma_all = self.theory.mu_sigma(zeros)
        self.mu_int, sigma_int = self.theory.mu_sigma(zeros, external=False)
        self.s2_int = sigma_int ** 2
        self.mu_ext, self.s2_ext = mu_all - self.mu_int, sigma_all ** 2 - self.s2_int
        K, J = np.asarray(M.K_matrix)[:, :n], np.asarray(M.J_matrix)[:, :n]
        self.K, self.J, tau_s = K, J, self.theory.tau_s
        self.A, self.B = tau_s * K * J, tau_s * K * J ** 2
        pops = np.array([name.split('-')[1] for name in M.structure_vec])
        self._is_5E, self._is_6E = pops == '5E', pops == '6E'
        self._factor_6E = factor_6E

    def inputs(self, rates, f):
        fac = np.ones(len(rates))
        fac[self._is_5E], fac[self._is_6E] = f, self._factor_6E(f)
        mu = self.A @ rates + self.mu_int + fac * self.mu_ext
        return mu, np.sqrt(np.maximum(self.B @ rates + self.s2_int + fac * self.s2_ext, 0.))

    def residual(self, rates, f):
        from ..theory import siegert_rate
        return siegert_rate(*self.inputs(rates, f), self.theory.neuron) - rates

    def gain(self, rates, f):
        """Effective connectivity dPhi/dnu at ``rates`` (stable if every Re eigenvalue < 1)."""
        from ..theory.core import effective_connectivity
        S, T = self.theory.d_nu(*self.inputs(rates, f))
        return effective_connectivity(S, T, self.K, self.J, self.theory.tau_s)

    def solve(self, guess, f):
        """Fixed point near ``guess`` at drive f (scipy's hybrid Newton method), its leading
        eigenvalue, and whether the solver converged."""
        from scipy.optimize import root
        eye = np.eye(len(guess))
        try:
            sol = root(self.residual, guess, args=(f,), jac=lambda r, f: self.gain(r, f) - eye,
                       method='hybr', options={'xtol': 1e-12})
        except ValueError:          # a step left the rates' domain (non-finite input)
            return np.asarray(guess, float), np.inf, False
        lam = float(np.linalg.eigvals(self.gain(sol.x, f)).real.max())
        return sol.x, lam, bool(sol.success)


def follow_branch(scan: DriveScan, start_rates, start_f, drives) -> list[dict]:
    """Fixed points along ``drives`` (increasing or decreasing from ``start_f``), each solved
    from the previous one. The branch ends where the solver fails, the fixed point loses
    stability (leading eigenvalue >= 1) or the solution jumps to the other state (mean rate
    changes by more than half); the last step is then halved BRANCH_REFINEMENTS times."""
    def accept(prev, f):
        rates, lam, ok = scan.solve(prev['rates'], f)
        jump = abs(rates.mean() - prev['rates'].mean()) > 0.5 * prev['rates'].mean()
        good = ok and lam < 1. and not jump and np.all(rates > -1e-9)
        return good, {'f5': float(f), 'rates': rates, 'leading_eigenvalue': lam}

    rates, lam, ok = scan.solve(np.asarray(start_rates, float), start_f)
    if not ok or lam >= 1.:
        raise RuntimeError(f"fig3: no stable fixed point near the start at f5 = {start_f}")
    branch = [{'f5': float(start_f), 'rates': rates, 'leading_eigenvalue': lam}]
    for f in drives:
        good, point = accept(branch[-1], f)
        if good:
            branch.append(point)
            continue
        lo, hi = branch[-1]['f5'], float(f)
        for _ in range(BRANCH_REFINEMENTS):
            mid = 0.5 * (lo + hi)
            good, point = accept(branch[-1], mid)
            if good:
                branch.append(point)
                lo = mid
            else:
                hi = mid
        branch[-1]['ends_before'] = hi
        break
    return branch


def bistability_data() -> dict:
    """Every number of Fig. 3: the states reached from zero rates at the drives of panels C
    and D, and the low and high branches of fixed points along the drive."""
    from ..theory import Theory
    states = {}
    for name, f5 in FIG3_STATES.items():
        M = paper_network(f5)
        theory = Theory(M, THEORY_SPEC)
        _, traj, times = theory.integrate_siegert(full_output=True)
        rates = traj[:, -1]
        states[name] = {'f5': f5, 'rates': rates, 'grid': theory_grid(M, rates),
                        'convergence': theory.convergence(traj, times),
                        'leading_eigenvalue': float(theory.leading_eigenvalue(rates).real)}
    base = paper_network(1.)
    scan = DriveScan(base)
    branches = {}
    for name, state in states.items():
        f0 = state['f5']
        down = follow_branch(scan, state['rates'], f0, FIG3_SCAN[FIG3_SCAN < f0][::-1])
        up = follow_branch(scan, state['rates'], f0, FIG3_SCAN[FIG3_SCAN > f0])
        points = down[::-1] + up[1:]
        branches[name] = {
            'f5': [p['f5'] for p in points], 'mean_rate': [float(p['rates'].mean()) for p in points],
            'leading_eigenvalue': [p['leading_eigenvalue'] for p in points],
            'rates': [p['rates'] for p in points],
            'ends_below': down[-1].get('ends_before'), 'ends_above': up[-1].get('ends_before')}
    return {'network': {'connection_params': base.params['connection_params'],
                        'rate_ext': base.params['input_params']['rate_ext'], 'K': 'raw',
                        'theory': THEORY_SPEC},
            'areas': list(base.area_list), 'populations': list(base.structure_vec),
            'architectural_types': architectural_types(base.area_list),
            't_ref_ms': base.params['neuron_params']['single_neuron_dict']['t_ref'],
            'states': states, 'branches': branches}


def fig3_bistability(out_dir) -> list:
    d = bistability_data()
    pyplot = plt()
    fig = pyplot.figure(figsize=(11, 12), constrained_layout=True)
    grid = fig.add_gridspec(3, 2, height_ratios=[1., 1., 1.])
    letters = {'low': ('C', 'E'), 'high': ('D', 'F')}
    for col, (name, state) in enumerate(d['states'].items()):
        conv = state['convergence']
        rate_matrix(fig, fig.add_subplot(grid[0, col]), state['grid'], d['areas'],
                    d['architectural_types'],
                    f"{letters[name][0]}  {name}-activity state, f5 = {state['f5']:g} (from zero "
                    f"rates)\nmean {np.mean(state['rates']):.2f} spikes/s, "
                    f"{'fixed point' if conv['converged'] else 'NOT converged'}")
        rate_histograms(fig, grid[1, col], state['grid'],
                        f"{letters[name][1]}  population rates, f5 = {state['f5']:g}", d['t_ref_ms'])
    g, h = fig.add_subplot(grid[2, 0]), fig.add_subplot(grid[2, 1])
    colors = {'low': BLUE, 'high': RED}
    for name, br in d['branches'].items():
        g.plot(br['f5'], br['mean_rate'], '.-', color=colors[name], ms=3, label=f'{name} branch')
        h.plot(br['f5'], br['leading_eigenvalue'], '.-', color=colors[name], ms=3,
               label=f'{name} branch')
        for end in (br['ends_below'], br['ends_above']):
            if end is not None:
                for ax in (g, h):
                    ax.axvline(end, color=colors[name], ls=':', lw=0.8)
    for name, state in d['states'].items():
        g.plot(state['f5'], np.mean(state['rates']), 'o', mfc='none', color='k', ms=8)
    g.plot([], [], 'o', mfc='none', color='k', label='from zero rates (C, D)')
    g.set_yscale('log')
    g.set(xlabel='drive factor f5 of 5E (6E: 10/3 f5 − 7/3)', ylabel='mean population rate (spikes/s)',
          title='G  fixed points along the drive (stable branches;\n'
                'dotted: where a branch ends)')
    g.legend(fontsize=7)
    h.axhline(1., color='k', lw=0.8, ls='--')
    h.set(xlabel='drive factor f5 of 5E (6E: 10/3 f5 − 7/3)', ylabel='leading eigenvalue Re λ',
          title='H  stability: leading eigenvalue of the effective\nconnectivity (unstable at 1)')
    h.legend(fontsize=7)
    fig.suptitle(f"{PAPER}, Fig. 3: bistability of the multi-area model (raw K, g = "
                 f"{d['network']['connection_params']['g']:g}, rate_ext {d['network']['rate_ext']:g});"
                 "\nmean-field theory (the paper: spiking simulations); sketches A, B not drawn",
                 fontsize=9)
    return save(fig, d, out_dir, 'fig3_bistability')


# ============================================================== Fig. 9: K' against K, simulated
#: upstream's Fig9_simulation on top of the paper's network (rate_ext 10 as Fig. 3)
FIG9_CONNECTION = {'g': -12., 'fac_nu_ext_5E': 1.125, 'fac_nu_ext_6E': 1.41666667}
#: upstream's Fig. 9 initial membrane potentials (mV): hyperpolarized, against synchronous onset
FIG9_NEURON = {'V0_mean': -150., 'V0_sd': 50.}
#: the two runs: the network with K' and with the raw K
FIG9_VARIANTS = {'K_prime': "K'", 'raw_K': 'raw K'}
#: the registry's states (labels in upstream's data layout) of the two runs
FIG9_STATES = {variant: f'fig9_{variant}' for variant in FIG9_VARIANTS}


def k_prime_file(source: str = 'ours') -> Path:
    """The K' Fig. 9 applies. 'ours': the project's stabilization of the paper's network
    (upstream's stabilization.py parameters), through the model's ``K_stable = True``
    (computed once, then cached); 'upstream': upstream's published K_prime_original.npy."""
    from ..theory.stabilization import K_PRIME_CHOICES, SCHUECKER2017_NETWORK, UPSTREAM_K_PRIME
    if source == 'upstream':
        from ..data import data_file
        return data_file(UPSTREAM_K_PRIME)
    if source != 'ours':
        raise ValueError(f"fig9: k_prime must be one of {K_PRIME_CHOICES}, got {source!r}")
    from ..model import MultiAreaModel
    params = copy.deepcopy(SCHUECKER2017_NETWORK)
    params['connection_params']['K_stable'] = True
    return Path(MultiAreaModel(params).K_stable_path)


def full_scale(network_params: dict) -> dict:
    """The same network at full scale (no down-scaling, no full-scale rates needed)."""
    params = copy.deepcopy(network_params)
    params.update(N_scaling=1., K_scaling=1., fullscale_rates=None)
    return params


def _write_if_new(path: Path, data: bytes) -> None:
    """Write ``data`` atomically; refuse to replace an existing file of other content (the
    runs beside it were made from it)."""
    from ..io import atomic_path
    if path.is_file():
        if path.read_bytes() == data:
            return
        raise FileExistsError(f"{path} exists with other content (an earlier Fig. 9 set-up "
                              "whose runs may be there); remove it, or use another folder")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def fig9_network_params() -> dict:
    """network_params of upstream's Fig. 9 (the paper's network with FIG9_CONNECTION, raw K)."""
    params = paper_params(**FIG9_CONNECTION)
    params['neuron_params'] = dict(FIG9_NEURON)
    return params


def mean_field(network_params: dict):
    """Stationary mean-field state from zero rates (THEORY_SPEC) of the network: the model,
    the rates and whether they are a fixed point."""
    from ..model import MultiAreaModel
    from ..theory import Theory
    M = MultiAreaModel(network_params)
    theory = Theory(M, THEORY_SPEC)
    _, traj, times = theory.integrate_siegert(full_output=True)
    return M, traj[:, -1], theory.convergence(traj, times)['converged']


def fig9_configs(base_config, out_dir, k_prime: str = 'ours') -> dict:
    """Write the model configurations of Fig. 9's runs into ``out_dir``: ``K_prime.yaml`` and
    ``raw_K.yaml`` (``fig9_network_params`` updated with ``base_config``'s network_params,
    e.g. the scaling, and its simulation settings; K_stable: the copied ``K_prime.npy``, none),
    ``fig9.json`` (where K' came from; the mean-field rates of both networks at full scale and
    as run) and, for a down-scaled base, ``fullscale_rates.json``: the mean-field rates of the
    full-scale network with K', which both down-scaled runs use to keep the full-scale mean
    input. Refuses to replace files of an earlier, different set-up. Returns {variant: path}."""
    import hashlib
    import json
    import yaml
    from ..config import load_config
    from ..params import nested_update
    from ..structure import vector_to_dict
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(base_config)
    raw = nested_update(fig9_network_params(), cfg.get('network_params', {}))
    raw['connection_params']['K_stable'] = None
    source = k_prime_file(k_prime)
    data = source.read_bytes()
    target = out / 'K_prime.npy'
    _write_if_new(target, data)
    info = {'k_prime': k_prime, 'k_prime_source': str(source),
            'k_prime_sha256': hashlib.sha256(data).hexdigest(), 'base_config': str(base_config)}
    with_k = copy.deepcopy(raw)
    with_k['connection_params']['K_stable'] = str(target.resolve())
    variants = {'K_prime': with_k, 'raw_K': raw}
    info['mean_rate_theory'] = {}
    for variant, params in variants.items():
        M, rates, converged = mean_field(full_scale(params))
        info['mean_rate_theory'][variant] = {'full_scale': float(rates.mean()),
                                             'full_scale_converged': converged}
        if variant == 'K_prime' and (params.get('N_scaling', 1.) != 1. or
                                     params.get('K_scaling', 1.) != 1.):
            if not converged:
                raise RuntimeError(f"fig9: the mean-field rates of the full-scale network with "
                                   f"K' ({source}) reach no fixed point; cannot down-scale with them")
            rates_file = out / 'fullscale_rates.json'
            _write_if_new(rates_file, json.dumps(vector_to_dict(rates, M.area_list, M.structure),
                                                 indent=1).encode())
            info['fullscale_rates'] = "mean-field rates of the full-scale network with K'"
            for p in variants.values():
                p['fullscale_rates'] = str(rates_file.resolve())
    for variant, params in variants.items():
        if params.get('N_scaling', 1.) != 1. or params.get('K_scaling', 1.) != 1.:
            _, rates, converged = mean_field(params)
            info['mean_rate_theory'][variant].update(as_run=float(rates.mean()),
                                                     as_run_converged=converged)
    paths = {}
    for variant, params in variants.items():
        paths[variant] = out / f'{variant}.yaml'
        _write_if_new(paths[variant], yaml.safe_dump({**cfg, 'network_params': params},
                                                     sort_keys=False).encode())
    _write_if_new(out / 'fig9.json', json.dumps(info, indent=1).encode())
    return paths


def fig9_data(K_prime, raw_K) -> dict:
    """Every number of Fig. 9, from the two runs in upstream's layout (``LabelledRun``s, set up
    by ``fig9_configs`` and written by ``fig9-layout``; ``fig9.json`` of the set-up lies in
    their data_path): simulated population rates (pop_rates.json) and the mean-field rates of
    each network at full scale."""
    import json
    from ..model import MultiAreaModel
    from ..theory import Theory
    from .dynamics import describe, population_table
    info_file = K_prime.data_path / 'fig9.json'
    if not info_file.is_file():
        raise FileNotFoundError(f"{info_file}: missing; set Fig. 9's runs up with fig9_configs "
                                "(the meanfield workflow's fig9 settings)")
    out = {'setup': json.loads(info_file.read_text()), 'variants': {}}
    for variant, run in (('K_prime', K_prime), ('raw_K', raw_K)):
        areas = run.areas()
        window = run.json('pop_rates')['Parameters']
        # as written (custom_params() reads null as NaN, which the model refuses)
        net = json.loads(run.file('custom_params').read_text())['network_params']
        M = MultiAreaModel(full_scale(net))
        if list(M.area_list) != areas:
            raise ValueError(f"{run.root}: Fig. 9 needs all {len(M.area_list)} areas "
                             f"recorded, the run has {len(areas)}")
        theory = Theory(M, THEORY_SPEC)
        _, traj, times = theory.integrate_siegert(full_output=True)
        out['variants'][variant] = {
            'run': str(run.root), 'scale': describe(run),
            'simulated': population_table(run.pop_rates(), areas),
            'theory': theory_grid(M, traj[:, -1]),
            'theory_convergence': theory.convergence(traj, times),
            't_min_ms': window['t_min'], 't_max_ms': window['t_max'],
            'connection_params': {k: net['connection_params'][k]
                                  for k in ('g', 'fac_nu_ext_5E', 'fac_nu_ext_6E', 'K_stable')},
            'rate_ext': net['input_params']['rate_ext']}
        out['t_ref_ms'] = net['neuron_params']['single_neuron_dict']['t_ref']
    out['areas'] = areas
    out['architectural_types'] = architectural_types(areas)
    return out


def fig9_simulation(out_dir, K_prime, raw_K) -> list:
    d = fig9_data(K_prime, raw_K)
    k_name = {'ours': "our K' (the project's stabilization)",
              'upstream': "upstream's K' (K_prime_original.npy)"}[d['setup']['k_prime']]
    pyplot = plt()
    fig = pyplot.figure(figsize=(11, 12), constrained_layout=True)
    grid = fig.add_gridspec(3, 2)
    kp, raw = d['variants']['K_prime'], d['variants']['raw_K']
    window = f"rates in [{kp['t_min_ms']:g}, {kp['t_max_ms']:g}] ms"

    def mean(g):
        return np.nanmean(np.asarray(g, float))

    as_run = {v: t.get('as_run') for v, t in d['setup']['mean_rate_theory'].items()}

    def scaled(variant):
        """the down-scaled network's own mean-field state (from zero rates), if down-scaled"""
        x = as_run[variant]
        return '' if x is None else f"; down-scaled network's theory: {x:.2f}"

    rate_matrix(fig, fig.add_subplot(grid[0, 0]), kp['theory'], d['areas'], d['architectural_types'],
                f"A  mean-field theory with K' (full scale)\nmean {mean(kp['theory']):.2f} "
                f"spikes/s{scaled('K_prime')}")
    rate_matrix(fig, fig.add_subplot(grid[0, 1]), kp['simulated'], d['areas'],
                d['architectural_types'],
                f"B  simulation with K'\nmean {mean(kp['simulated']):.2f} spikes/s, {window}")
    c = fig.add_subplot(grid[1, 0])
    lo = ZERO_RATE
    for variant, color, marker in (('K_prime', 'k', '.'), ('raw_K', RED, 'x')):
        v = d['variants'][variant]
        sim, th = np.asarray(v['simulated'], float).ravel(), np.asarray(v['theory'], float).ravel()
        ok = np.isfinite(sim) & np.isfinite(th)
        c.loglog(np.maximum(sim[ok], lo), np.maximum(th[ok], lo), marker, color=color, ms=5,
                 label=f"{FIG9_VARIANTS[variant]} (theory mean {np.nanmean(th):.3g} spikes/s)")
    c.loglog([lo, 1e3], [lo, 1e3], color='0.5', lw=1)
    c.set(xlabel='simulated rate (spikes/s)', ylabel='mean-field rate (spikes/s)',
          title=f'C  theory against simulation (values below {lo:g} drawn at {lo:g})')
    c.legend(fontsize=7)
    rate_histograms(fig, grid[1, 1], kp['simulated'], "D  simulated population rates with K'",
                    d['t_ref_ms'])
    rate_matrix(fig, fig.add_subplot(grid[2, 0]), raw['simulated'], d['areas'],
                d['architectural_types'],
                f"E  simulation with the raw K, mean {mean(raw['simulated']):.2f} spikes/s, "
                f"{window}\ntheory: {mean(raw['theory']):.2f} (full scale){scaled('raw_K')}")
    rate_histograms(fig, grid[2, 1], raw['simulated'], 'F  simulated population rates with the raw K',
                    d['t_ref_ms'])
    cp = kp['connection_params']
    fig.suptitle(f"{PAPER}, Fig. 9: g = {cp['g']:g}, rate_ext {kp['rate_ext']:g}, f5 = "
                 f"{cp['fac_nu_ext_5E']:g}, f6 = {cp['fac_nu_ext_6E']:.4g}; {k_name} vs the raw K"
                 f"\n{kp['scale']}", fontsize=9)
    return save(fig, d, out_dir, 'fig9_simulation')


def fig9_layout(run_dir, data_path, variant: str, t_min: float) -> Path:
    """Write the analysed run ``run_dir`` of ``variant`` into upstream's layout
    ``<data_path>/fig9_<variant>/``, only what Fig. 9 reads (its parameters and pop_rates.json,
    with upstream's Analysis members); replaces an older one. Returns the folder."""
    from ..analysis.preprocess import PRODUCTS, analysis_members, custom_params, preprocess
    only = [p for p, f in PRODUCTS.items() if f in (custom_params, analysis_members)]
    return preprocess(run_dir, data_path, FIG9_STATES[variant], t_min=t_min, only=only,
                      overwrite=True, verbose=False)['root']


def main(argv=None) -> int:
    """``python -m mam_pynn.figures.bistability fig9-configs BASE --out DIR [--k-prime S]``:
    the meanfield workflow's set-up of Fig. 9's runs; ``... fig9-layout RUN_DIR --out DIR
    --variant V [--t-min MS]``: one analysed run of them into upstream's layout."""
    import argparse

    from ..faults import run_command
    from ..theory.stabilization import K_PRIME_CHOICES
    p = argparse.ArgumentParser(prog='python -m mam_pynn.figures.bistability',
                                description=main.__doc__)
    p.add_argument('command', choices=['fig9-configs', 'fig9-layout'])
    p.add_argument('source', help="fig9-configs: model configuration of Fig. 9's runs (network "
                   "and simulation); fig9-layout: an analysed run directory")
    p.add_argument('--out', required=True, help='folder of the configurations, runs and layout')
    p.add_argument('--k-prime', default='ours', choices=K_PRIME_CHOICES,
                   help="ours: the project's stabilization (default); upstream: K_prime_original.npy")
    p.add_argument('--variant', choices=list(FIG9_VARIANTS), help='fig9-layout: which run')
    p.add_argument('--t-min', type=float, default=500., help='fig9-layout: ms skipped (default 500)')
    args = p.parse_args(argv)
    if args.command == 'fig9-layout' and not args.variant:
        p.error('fig9-layout needs --variant')

    def work():
        if args.command == 'fig9-layout':
            fig9_layout(args.source, args.out, args.variant, args.t_min)   # prints its summary
            return
        paths = fig9_configs(args.source, args.out, args.k_prime)
        print(f"fig9-configs: wrote {', '.join(str(p) for p in paths.values())} (K': {args.k_prime})",
              flush=True)
    # one line and the documented exit code for an expected failure; a bug keeps its traceback
    return run_command(f'python -m mam_pynn.figures.bistability {args.command}', work)


FIGURES = {'fig2_ee_example': fig2_ee_example, 'fig3_bistability': fig3_bistability,
           'fig9_simulation': (fig9_simulation, FIG9_STATES)}

if __name__ == '__main__':
    raise SystemExit(main())
