"""Page script (see app/views/export_page.py)."""
from views.export_page import render

render()
