"""Page script (see app/views/help_page.py)."""
from views.help_page import render

render()
