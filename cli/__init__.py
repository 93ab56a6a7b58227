"""The `panelpaint` command line and the `up` supervisor: the composition root, the one room that imports every other."""
