"""Page script (see app/views/groups_page.py)."""
from views.groups_page import render

render()
