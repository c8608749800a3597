"""Analysis of JoLA edits: which heads the gates kept, where, how runs overlap, how gates moved, what edits write.

Library code only (no training). Everything reads JoLAEdit objects, saved edit folders or run folders.
"""

from jola_lens.analysis.depth import depth_profile, plot_depth_profile
from jola_lens.analysis.figures import COLOR_SCALES, FORMATS, save_figure
from jola_lens.analysis.heatmaps import plot_head_grid, plot_head_heatmap
from jola_lens.analysis.logit_lens import (
    additive_logit_lens,
    head_output_weight,
    multiplicative_scalings,
    plot_logit_lens,
)
from jola_lens.analysis.overlap import cluster_order, jaccard, overlap_matrices, plot_overlap, spearman
from jola_lens.analysis.sources import EditSource, load_source, load_sources
from jola_lens.analysis.summary import summary_markdown, summary_table, to_markdown, top_heads
from jola_lens.analysis.tables import (
    COLUMNS,
    METRICS,
    MixedModelsError,
    head_table,
    head_tensors,
    selected_mask,
    single_model,
)
from jola_lens.analysis.trajectories import (
    NoGateSnapshotsError,
    gate_trajectories,
    open_heads_log,
    plot_gate_trajectories,
)

__all__ = [
    "COLOR_SCALES",
    "COLUMNS",
    "FORMATS",
    "METRICS",
    "EditSource",
    "MixedModelsError",
    "NoGateSnapshotsError",
    "additive_logit_lens",
    "cluster_order",
    "depth_profile",
    "gate_trajectories",
    "head_output_weight",
    "head_table",
    "head_tensors",
    "jaccard",
    "load_source",
    "load_sources",
    "multiplicative_scalings",
    "open_heads_log",
    "overlap_matrices",
    "plot_depth_profile",
    "plot_gate_trajectories",
    "plot_head_grid",
    "plot_head_heatmap",
    "plot_logit_lens",
    "plot_overlap",
    "save_figure",
    "selected_mask",
    "single_model",
    "spearman",
    "summary_markdown",
    "summary_table",
    "to_markdown",
    "top_heads",
]
