"""Page script (see app/views/overview_page.py)."""
from views.overview_page import render

render()
