#!/usr/bin/python3
"""Sends an exact POP3 transcript and prints every response line (see
rawclient.py for the step syntax; M reads a multi-line response). Example:
  pop3_raw.py --port 1110 'L:USER a@b' R 'L:PASS secret' R 'L:LIST' M
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402

sys.exit(rawclient.main("pop3"))
