"""Summary tables: heads kept and parameters effectively used per run and edit kind, top-k heads, Markdown."""

from __future__ import annotations

import pandas as pd

from jola_lens.analysis.tables import as_table, selection_note


def summary_table(items: object) -> pd.DataFrame:
    """Per (run, kind), plus a kind 'all' row per run: heads edited and kept, and the parameters effectively used.

    ``params_used`` = kept heads x d_head, the numbers that still change the model at evaluation;
    ``params_total`` = the trainable ones (d_head per edited head, plus its gate logit when gated).
    """
    table = as_table(items)
    table = pd.concat([table, table.assign(kind="all")], ignore_index=True)
    rows = []
    for (run, kind), group in table.groupby(["run", "kind"], sort=False):
        edited, kept, d_head = int(group["edited"].sum()), int(group["selected"].sum()), int(group["d_head"].iloc[0])
        gate_logits = int(group.loc[group["edited"], "logit"].notna().sum())
        total = edited * d_head + gate_logits
        rows.append({"run": run, "task": group["task"].iloc[0], "model": group["model"].iloc[0], "kind": kind,
                     "heads_edited": edited, "heads_kept": kept, "share_kept": kept / edited if edited else float("nan"),
                     "params_used": kept * d_head, "params_total": total,
                     "share_params_used": kept * d_head / total if total else float("nan"),
                     "mean_p_nonzero": float(group["p_nonzero"].mean()), "note": selection_note(group)})
    return pd.DataFrame(rows).sort_values("run", key=lambda runs: runs.map(
        {run: i for i, run in enumerate(dict.fromkeys(table["run"]))}), kind="stable").reset_index(drop=True)


def top_heads(items: object, k: int = 5) -> pd.DataFrame:
    """The ``k`` strongest selected heads per (run, kind), by gate value, then P(g != 0), then edit norm."""
    table = as_table(items)
    frames = []
    for _, group in table.groupby(["run", "kind"], sort=False):
        kept = group[group["selected"]].sort_values(["gate", "p_nonzero", "norm"], ascending=False, kind="stable")
        frames.append(kept.head(k).assign(rank=range(1, min(k, len(kept)) + 1)))
    columns = ["run", "kind", "rank", "layer", "head", "gate", "p_nonzero", "norm", "change"]
    return pd.concat(frames, ignore_index=True)[columns]


def to_markdown(frame: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else format(value, floatfmt)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def summary_markdown(items: object, k: int = 5) -> str:
    """Heads kept per run and kind, parameters used, and the top-k heads, as Markdown."""
    table = as_table(items)
    summary = summary_table(table)
    lines = ["## Heads kept per run and edit kind", "",
             ("A head is kept (selected) when its evaluation gate is > 0. `params_used` = kept heads x d_head; "
              "`params_total` = trainable edit parameters (vectors and gate logits)."), "",
             to_markdown(summary.drop(columns=["task", "model"])), ""]
    if (summary["heads_kept"] == summary["heads_edited"]).all():
        lines += [("**No gate closed in any run: every edited head is open.** The rankings below and the figures "
                   "still separate heads by gate value, P(g≠0), edit norm and change from initialisation."), ""]
    top = top_heads(table, k)
    top.insert(3, "head_id", [f"L{layer} H{head}" for layer, head in zip(top["layer"], top["head"])])
    lines += [f"## Top {k} heads per run and edit kind (by gate value, then P(g≠0))", "",
              to_markdown(top.drop(columns=["layer", "head"])), ""]
    return "\n".join(lines)
