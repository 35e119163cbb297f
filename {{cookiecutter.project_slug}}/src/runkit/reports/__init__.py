"""Reports: a run or a sweep rendered to HTML and PDF."""
