"""``yuejuan eval``: grade a labelled set through the production pipeline and measure it against teachers.

One module per part: the labelled sets, the run, the figures (pure functions in ``metrics``) and the
workbook.
"""
