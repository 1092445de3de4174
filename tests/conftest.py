"""Test-session set-up: Ray 2.60 writes an auth token under $HOME/.ray when a local instance starts; the tests (and
every process they start) get a private HOME so they never touch the user's ~/.ray."""

import os
import tempfile

os.environ["HOME"] = tempfile.mkdtemp(prefix="distdqn-test-home-")
