#!/usr/bin/python3
"""Sends an exact SMTP transcript and prints every reply (see rawclient.py
for the step syntax). Example:
  smtp_raw.py --port 2525 'L:EHLO x' R 'S:MAIL FROM:<a@b>\\nRCPT..' R:2 E
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402

sys.exit(rawclient.main("smtp"))
