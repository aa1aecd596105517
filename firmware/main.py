# main: build the board, run the validator. Not imported by unit tests.
from board import make_board
from validator.app.main import start

start(make_board())
