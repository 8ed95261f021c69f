"""Pictures of traces: the self-contained HTML viewer (html.py + viewer.html), ANSI colours for the
terminal (terminal.py), gate-saturation plots (plots.py, matplotlib) and the shared colour map
(colors.py): red for negative, blue for positive, pale near zero."""
