"""Analysis of JoLA edits: which heads the gates kept, where, how runs overlap, how gates moved, what edits write,
and whether a selection reproduces across seeds beyond chance (consensus, stability, task comparison).

Library code only (no training). Everything reads JoLAEdit objects, saved edit folders or run folders.
"""

from jola_lens.analysis.comparison import permutation_test, run_distances, task_comparison
from jola_lens.analysis.consensus import (
    consensus_grid,
    consensus_heads,
    consensus_table,
    plot_consensus_grid,
    plot_consensus_heatmap,
    plot_consensus_interactive,
)
from jola_lens.analysis.depth import depth_profile, plot_depth_profile
from jola_lens.analysis.figures import COLOR_SCALES, FORMATS, save_figure
from jola_lens.analysis.groups import SeedGroup, SeedGroupError, group_notes, grouped_table, seed_groups
from jola_lens.analysis.heatmaps import plot_head_grid, plot_head_heatmap
from jola_lens.analysis.logit_lens import (
    additive_logit_lens,
    head_output_weight,
    multiplicative_scalings,
    plot_logit_lens,
)
from jola_lens.analysis.overlap import cluster_order, jaccard, overlap_matrices, plot_overlap, spearman, task_order
from jola_lens.analysis.sources import EditSource, load_source, load_sources
from jola_lens.analysis.stability import (
    mean_pairwise_jaccard,
    mean_pairwise_rbo,
    nogueira_stability,
    rbo_ext,
    stability_report,
    stability_verdicts,
)
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
    "SeedGroup",
    "SeedGroupError",
    "additive_logit_lens",
    "cluster_order",
    "consensus_grid",
    "consensus_heads",
    "consensus_table",
    "depth_profile",
    "gate_trajectories",
    "group_notes",
    "grouped_table",
    "head_output_weight",
    "head_table",
    "head_tensors",
    "jaccard",
    "load_source",
    "load_sources",
    "mean_pairwise_jaccard",
    "mean_pairwise_rbo",
    "multiplicative_scalings",
    "nogueira_stability",
    "open_heads_log",
    "overlap_matrices",
    "permutation_test",
    "plot_consensus_grid",
    "plot_consensus_heatmap",
    "plot_consensus_interactive",
    "plot_depth_profile",
    "plot_gate_trajectories",
    "plot_head_grid",
    "plot_head_heatmap",
    "plot_logit_lens",
    "plot_overlap",
    "rbo_ext",
    "run_distances",
    "save_figure",
    "seed_groups",
    "selected_mask",
    "single_model",
    "spearman",
    "stability_report",
    "stability_verdicts",
    "summary_markdown",
    "summary_table",
    "task_comparison",
    "task_order",
    "to_markdown",
    "top_heads",
]
