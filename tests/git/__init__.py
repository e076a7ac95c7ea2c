"""Tests of ``repohost.git``: names, filesystem storage, locks and dulwich reads."""
