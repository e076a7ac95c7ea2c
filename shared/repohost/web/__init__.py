"""The GET views that accept ``?api_key=``: raw files, diffs and patches, archives, feeds.

``serve`` does what every view shares (finding the repository in the path,
deciding who the caller is and whether they may read it); each view module
only renders an answer for a repository the caller may read.
"""
