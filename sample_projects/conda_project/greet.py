"""Greets from inside the conda env: its python, a pip-section package, a conda package's variable."""

import argparse
import os
import shutil
import subprocess
import sys

import six

parser = argparse.ArgumentParser()
parser.add_argument("--name", default="world")
args = parser.parse_args()

print(f"hi {args.name}: python {sys.version.split()[0]} in {sys.prefix}")
print(f"six {six.__version__} from the pip section")
print(f"GREETING={os.environ.get('GREETING')} (set by the greeting package's activate.d)")
hello = shutil.which("hello")
print(subprocess.run([hello], capture_output=True, text=True).stdout.strip() if hello else "no hello")
