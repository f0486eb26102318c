"""Page script (see app/views/thresholds_page.py)."""
from views.thresholds_page import render

render()
