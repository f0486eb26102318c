"""Page script (see app/views/data_page.py)."""
from views.data_page import render

render()
