"""python -m aecodec.train CONFIG.json RUN_DIR [--max-steps N] [--init-from weights/]"""
from .cli import main

main()
