"""Page script (see app/views/models_page.py)."""
from views.models_page import render

render()
