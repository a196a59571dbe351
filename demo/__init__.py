"""The demos: ``make demo`` (``python -m demo.local``: the example model through the whole pipeline on embedded
defaults) and ``make demo-real`` (``python -m demo.real``: the same on a real HDFS and Atlas). They drive the
``modelgov`` command line like an operator; they are not flows."""
