"""The run's timeline: one horizontal bar per step attempt, on a shared clock from run start."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from streamlit_app.components.formatting import duration
from streamlit_app.components.status import style_of
from streamlit_app.data import StepAttempt

ROW_HEIGHT = 34


def timeline_figure(
    attempts: Sequence[StepAttempt], step_names: Sequence[str], start_ms: int, now_ms: int
) -> go.Figure:
    """Bars start where each attempt started; a running attempt grows until now."""
    ends = [a.completed_at or now_ms for a in attempts if a.started_at is not None]
    span = max([*ends, start_ms + 1]) - start_ms
    shortest = max(1.0, span * 0.006)  # a 2 ms step stays visible on a 10 s axis
    fig = go.Figure()
    # Every step gets its row, also those that have not started yet.
    fig.add_trace(
        go.Bar(
            y=list(step_names),
            x=[0] * len(step_names),
            orientation="h",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    for a in attempts:
        if a.started_at is None:
            continue
        end = a.completed_at if a.completed_at is not None else now_ms
        style = style_of(a.status)
        fig.add_trace(
            go.Bar(
                y=[a.name],
                x=[max(end - a.started_at, shortest) / 1000],
                base=[(a.started_at - start_ms) / 1000],
                orientation="h",
                marker={"color": style.bar},
                name=style.label,
                showlegend=False,
                hovertemplate=(
                    f"<b>{a.name}</b><br>attempt {a.attempt}/{a.max_attempts}"
                    f"<br>{style.label}<br>{duration(end - a.started_at)}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=60 + ROW_HEIGHT * max(len(step_names), 1),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        xaxis={"title": None, "ticksuffix": " s", "rangemode": "tozero", "zeroline": True},
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(step_names),
            "autorange": "reversed",
            "title": None,
        },
        bargap=0.35,
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig
