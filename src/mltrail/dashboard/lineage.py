"""A model's lineage as a graph: run -> version -> A/B experiment -> alias.

Built from the registry and the A/B experiments alone: a variant that serves
``models:/name@alias`` is linked to the version that alias held when the experiment
started (``alias_at``), so the graph shows what was really tested even after the
alias moved; a promotion links its experiment to the alias it moved.
"""

from __future__ import annotations

from typing import Any

from ..errors import MltrailError
from ..query.cells import present
from ..registry.uris import parse_model_uri


def lineage_edges(store: Any, name: str) -> list[tuple[str, str, str]]:
    """``(source, target, label)`` edges; node names are ``run:..``, ``v3``, ``ab:..``, ``@alias``."""
    registry = store.registry
    versions = registry.versions(name)
    edges = [(f"run:{present(row['run_name']) or row['run'][:10]}", f"v{row['version']}", "registered")
             for row in versions.to_dict("records") if present(row["run"])]  # (an MLflow version may have no run)
    for key in store.ab.keys():
        exp = store.ab.get(key)
        for variant in exp.spec.variants:
            if not (variant.model or "").startswith(f"models:/{name}"):
                continue
            try:
                model, number, alias = parse_model_uri(variant.model)
                if model != name:
                    continue
                if alias and alias != "latest" and exp.started:
                    held = registry.alias_at(name, alias, exp.started)
                    number = held.number if held else None
                elif number is None:
                    number = registry.get(name).number
            except MltrailError:
                continue
            if number is not None:
                edges.append((f"v{number}", f"ab:{key}", variant.name))
    history = registry.alias_history(name)
    for row in history[history["experiment"].notna()].to_dict("records"):
        edges.append((f"ab:{row['experiment']}", f"@{row['alias']}", "promoted"))
    for row in versions.to_dict("records"):
        for alias in filter(None, row["aliases"].split(", ")):
            edges.append((f"@{alias}", f"v{row['version']}", "points at"))
    return edges


def lineage_dot(store: Any, name: str) -> str:
    """The lineage in Graphviz's DOT language (``st.graphviz_chart`` draws it)."""
    shapes = {"run:": "box", "v": "ellipse", "ab:": "diamond", "@": "note"}
    edges = lineage_edges(store, name)
    nodes = sorted({n for edge in edges for n in edge[:2]})
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="sans-serif", fontsize=11];',
             '  edge [fontname="sans-serif", fontsize=9];']
    for node in nodes:
        shape = next(s for prefix, s in shapes.items() if node.startswith(prefix))
        label = node.removeprefix("run:").removeprefix("ab:")
        lines.append(f'  "{_dot(node)}" [shape={shape}, label="{_dot(label)}"];')
    for source, target, label in edges:
        style = ", style=dashed" if label == "points at" else ""
        lines.append(f'  "{_dot(source)}" -> "{_dot(target)}" [label="{_dot(label)}"{style}];')
    lines.append("}")
    return "\n".join(lines)


def _dot(text: str) -> str:
    """Text inside a double-quoted DOT string: a quote or backslash in a run name must not
    end the string (it blanked the whole graph)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
